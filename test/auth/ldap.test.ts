// The LDAP identity source against a real OpenLDAP (slapd from Debian, started here in a temp dir):
// search-and-bind, groups (direct and nested), admin group, TLS (LDAPS, StartTLS, refused
// certificates), the bind cache, a directory that goes away and comes back, and hostile names.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FilterParser } from 'ldapts';
import pino from 'pino';
import { IdentitySourceUnavailableError } from '../../src/auth/external.ts';
import { type LdapConfig, LdapDirectory } from '../../src/auth/ldap/directory.ts';
import { escapeFilterValue, groupMembershipFilter, normalizeDN, sameDN, userSearchFilter } from '../../src/auth/ldap/filters.ts';
import { DEFAULT_GROUPS, DEFAULT_USERS, type SlapdHandle, startSlapd } from '../support/slapd.ts';
import { run } from '../support/run.ts';
import { freePort } from '../support/system.ts';
import { createTlsMaterial } from '../support/tls.ts';

let ldap: SlapdHandle;
const logLines: Array<Record<string, unknown>> = [];
const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
const opened: LdapDirectory[] = [];

function config(overrides: Partial<LdapConfig> = {}): LdapConfig {
  return {
    url: ldap.url,
    startTLS: false,
    insecure: false,
    bindDN: ldap.serviceDN,
    bindPassword: ldap.servicePassword,
    baseDN: ldap.baseDN,
    userFilter: '(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))',
    uidAttribute: 'uid',
    emailAttribute: 'mail',
    scope: 'sub',
    groupBaseDN: ldap.groupsDN,
    groupFilter: '(objectClass=groupOfNames)',
    groupMembershipAttribute: 'member',
    groupNameAttribute: 'cn',
    nestedGroups: 'none',
    groupMemberValue: 'dn',
    adminGroup: ldap.groupDN('registry-admins'),
    timeout: 2,
    poolSize: 2,
    cacheTTL: 0,
    ...overrides,
  };
}

function directory(overrides: Partial<LdapConfig> = {}): LdapDirectory {
  const d = new LdapDirectory(config(overrides), log);
  opened.push(d);
  return d;
}

const names = (groups: ReadonlyArray<{ name: string }>): string[] => groups.map((g) => g.name).sort();

async function rejectsUnavailable(promise: Promise<unknown>, message: RegExp): Promise<IdentitySourceUnavailableError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof IdentitySourceUnavailableError, `expected IdentitySourceUnavailableError, got ${String(error)}`);
    assert.match(error.message, message);
    return error;
  }
  assert.fail('expected a rejection');
}

/** Established TCP connections from this process's machine to slapd's plain port. */
async function connectionsTo(url: string): Promise<number> {
  const port = new URL(url).port;
  const out = await run('ss', ['-Htn', 'state', 'established', `( dport = :${port} )`]);
  return out.stdout.split('\n').filter((l) => l.trim()).length;
}

before(async () => {
  ldap = await startSlapd({
    users: [
      ...DEFAULT_USERS,
      { uid: 'erin', password: 'erin-secret' },
      { uid: 'bad:name', password: 'bad-secret' },
      { uid: 'twin', password: 'twin-secret' },
    ],
    groups: DEFAULT_GROUPS,
  });
  // A second entry with uid=twin elsewhere under baseDN: a name that is not unique signs nobody in.
  await ldap.add(`dn: uid=twin,ou=services,${ldap.baseDN}\nobjectClass: inetOrgPerson\nuid: twin\ncn: twin\nsn: twin\nuserPassword: twin-secret\n`);
});

after(async () => {
  for (const d of opened) await d.close();
  await ldap?.close();
});

describe('filters and DNs', () => {
  it('escapes every filter metacharacter and NUL (RFC 4515)', () => {
    assert.equal(escapeFilterValue('*()\\\u0000'), '\\2a\\28\\29\\5c\\00');
    assert.equal(escapeFilterValue('zoë.o\'neil'), 'zoë.o\'neil');
    const parsed = FilterParser.parseString(userSearchFilter('objectClass=person', 'uid', 'a)(uid=*')) as unknown as { filters: Array<{ value?: string }> };
    assert.equal(parsed.filters[1]?.value, 'a)(uid=*');
  });

  it('builds the matching-rule-in-chain filter for Active Directory nested groups', () => {
    const dn = 'CN=Smith\\, John (ext),OU=Staff,DC=corp,DC=example';
    const filter = groupMembershipFilter('(objectClass=group)', 'member', dn, 'activeDirectory');
    assert.equal(filter, '(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Smith\\5c, John \\28ext\\29,OU=Staff,DC=corp,DC=example))');
    const parsed = FilterParser.parseString(filter) as unknown as { filters: Array<{ rule?: string; matchType?: string; value?: string }> };
    assert.deepEqual(
      { rule: parsed.filters[1]?.rule, attribute: parsed.filters[1]?.matchType, value: parsed.filters[1]?.value },
      { rule: '1.2.840.113556.1.4.1941', attribute: 'member', value: dn },
    );
    assert.equal(groupMembershipFilter('objectClass=groupOfNames', 'member', 'cn=x', 'none'), '(&(objectClass=groupOfNames)(member=cn=x))');
  });

  it('normalises DNs for comparison', () => {
    assert.ok(sameDN('CN=Registry-Admins, OU=Groups ,DC=berth,DC=test', 'cn=registry-admins,ou=groups,dc=berth,dc=test'));
    assert.ok(sameDN('cn=Smith\\, John,dc=x', 'CN=smith\\2C john,DC=X'));
    assert.ok(sameDN('cn=a+sn=b,dc=x', 'sn=B+cn=A,dc=x'));
    assert.ok(!sameDN('cn=a,dc=x', 'cn=a,dc=y'));
    assert.equal(normalizeDN('developers'), undefined);
    assert.equal(normalizeDN(''), undefined);
    assert.equal(normalizeDN('cn=a,'), undefined);
  });
});

describe('search-and-bind against OpenLDAP', () => {
  it('signs a user in with their groups and mail, the name as the directory stores it', async () => {
    const d = directory();
    const alice = await d.authenticate('ALICE', 'alice-secret');
    assert.ok(alice);
    assert.deepEqual({ ...alice, groups: names(alice.groups) }, {
      source: 'ldap',
      externalId: ldap.userDN('alice'),
      username: 'alice',
      email: 'alice@berth.test',
      groups: ['developers', 'readers'],
      admin: false,
    });
    assert.ok(alice.groups.some((g) => sameDN(g.externalId, ldap.groupDN('developers'))));
  });

  it('refuses a wrong password, an unknown user and a user the userFilter excludes', async () => {
    const d = directory();
    assert.equal(await d.authenticate('alice', 'wrong'), undefined);
    assert.equal(await d.authenticate('nobody', 'alice-secret'), undefined);
    assert.equal(await d.authenticate('dave', 'dave-secret'), undefined);
    assert.equal(await d.lookup('dave'), undefined);
    // Without the filter dave is a valid entry: the refusal above comes from userFilter.
    assert.equal((await directory({ userFilter: '(objectClass=inetOrgPerson)' }).authenticate('dave', 'dave-secret'))?.username, 'dave');
  });

  it('refuses an empty password before contacting the directory (it would be an anonymous bind)', async () => {
    const nowhere = directory({ url: `ldap://127.0.0.1:${await freePort()}` });
    assert.equal(await nowhere.authenticate('alice', ''), undefined);
    await rejectsUnavailable(nowhere.authenticate('alice', 'x'), /cannot connect to 127\.0\.0\.1:\d+ \(connection refused\)/);
    assert.equal(await directory().authenticate('alice', ''), undefined);
  });

  it('makes members of the admin group administrators', async () => {
    const root = await directory().authenticate('root-admin', 'root-admin-secret');
    assert.equal(root?.admin, true);
    assert.deepEqual(names(root?.groups ?? []), ['registry-admins']);
    // The admin group compared as a DN, whatever its spelling.
    const spelled = directory({ adminGroup: `CN=Registry-Admins, OU=Groups,${ldap.baseDN.toUpperCase()}` });
    assert.equal((await spelled.lookup('root-admin'))?.admin, true);
    assert.equal((await spelled.lookup('alice'))?.admin, false);
    assert.deepEqual((await directory({ groupBaseDN: undefined }).lookup('root-admin'))?.groups, []);
  });

  it('walks nested groups level by level in search mode, and stops at cycles', async () => {
    assert.deepEqual(names((await directory().lookup('carol'))?.groups ?? []), ['platform']);
    const nested = directory({ nestedGroups: 'search' });
    assert.deepEqual(names((await nested.lookup('carol'))?.groups ?? []), ['developers', 'platform']);
    await ldap.add(
      [
        `dn: cn=loop-a,${ldap.groupsDN}\nobjectClass: groupOfNames\ncn: loop-a\nmember: ${ldap.userDN('bob')}\nmember: cn=loop-b,${ldap.groupsDN}`,
        `dn: cn=loop-b,${ldap.groupsDN}\nobjectClass: groupOfNames\ncn: loop-b\nmember: cn=loop-a,${ldap.groupsDN}`,
      ].join('\n\n') + '\n',
    );
    // A chain of 12 groups above bob's direct one: the walk climbs 10 levels, no further.
    const chain = Array.from({ length: 12 }, (_, i) => `chain-${String(i).padStart(2, '0')}`);
    await ldap.add(
      chain
        .map((cn, i) => `dn: cn=${cn},${ldap.groupsDN}\nobjectClass: groupOfNames\ncn: ${cn}\nmember: ${i === 0 ? ldap.userDN('bob') : `cn=${chain[i - 1]},${ldap.groupsDN}`}`)
        .join('\n\n') + '\n',
    );
    try {
      assert.deepEqual(names((await nested.lookup('bob'))?.groups ?? []).filter((n) => !n.startsWith('chain-')), ['loop-a', 'loop-b', 'readers']);
      assert.deepEqual(names((await nested.lookup('bob'))?.groups ?? []).filter((n) => n.startsWith('chain-')), chain.slice(0, 11));
    } finally {
      await ldap.delete(`cn=loop-a,${ldap.groupsDN}`);
      await ldap.delete(`cn=loop-b,${ldap.groupsDN}`);
      for (const cn of chain.reverse()) await ldap.delete(`cn=${cn},${ldap.groupsDN}`);
    }
  });

  it('reads posixGroup groups that list members by user name (groupMemberValue uid)', async () => {
    await ldap.add(`dn: cn=posix-devs,${ldap.groupsDN}\nobjectClass: posixGroup\ncn: posix-devs\ngidNumber: 5001\nmemberUid: alice\nmemberUid: carol\n`);
    try {
      const posix = directory({ groupFilter: '(objectClass=posixGroup)', groupMembershipAttribute: 'memberUid', groupMemberValue: 'uid' });
      assert.deepEqual(names((await posix.authenticate('alice', 'alice-secret'))?.groups ?? []), ['posix-devs']);
      assert.deepEqual(names((await posix.lookup('bob'))?.groups ?? []), []);
      // The same directory read by DN finds none of them: posixGroup holds names, not DNs.
      assert.deepEqual(names((await directory({ groupFilter: '(objectClass=posixGroup)', groupMembershipAttribute: 'memberUid' }).lookup('alice'))?.groups ?? []), []);
    } finally {
      await ldap.delete(`cn=posix-devs,${ldap.groupsDN}`);
    }
  });

  it('never lets a hostile user name match anyone else', async () => {
    const d = directory();
    for (const name of ['*', 'al*', 'alice)(uid=alice', 'a)(uid=*', '\\61lice', 'alice\u0000', '\u0000', 'alice*']) {
      assert.equal(await d.authenticate(name, 'alice-secret'), undefined, JSON.stringify(name));
      assert.equal(await d.lookup(name), undefined, JSON.stringify(name));
    }
  });

  it('signs nobody in under a name several entries carry, or one Berth cannot use', async () => {
    const d = directory();
    assert.equal(await d.authenticate('twin', 'twin-secret'), undefined);
    assert.ok(logLines.some((l) => l['msg'] === 'ldap user name matches several entries'));
    assert.equal(await d.authenticate('bad:name', 'bad-secret'), undefined);
    assert.ok(logLines.some((l) => l['msg'] === 'ldap user name is not usable in berth'));
  });

  it('finds groups by name and by DN under groupBaseDN', async () => {
    const d = directory();
    const developers = { externalId: ldap.groupDN('developers'), name: 'developers' };
    assert.deepEqual(await d.findGroups('developers'), [developers]);
    const byDN = await d.findGroups(`CN=Developers,OU=groups,${ldap.baseDN}`);
    assert.equal(byDN.length, 1);
    assert.ok(sameDN(byDN[0]?.externalId ?? '', developers.externalId));
    assert.deepEqual(await d.findGroups('no-such-group'), []);
    assert.deepEqual(await d.findGroups(`cn=nope,${ldap.groupsDN}`), []);
    assert.deepEqual(await d.findGroups('*'), []);
    assert.deepEqual(await d.findGroups(ldap.userDN('alice')), []);
    await assert.rejects(directory({ groupBaseDN: undefined }).findGroups('developers'), /groupBaseDN is not set/);
  });
});

describe('TLS', () => {
  it('signs in over LDAPS and over StartTLS with the CA file', async () => {
    assert.equal((await directory({ url: ldap.ldapsUrl, caFile: ldap.caFile }).authenticate('alice', 'alice-secret'))?.username, 'alice');
    const startTLS = directory({ startTLS: true, caFile: ldap.caFile });
    await startTLS.check();
    assert.equal((await startTLS.authenticate('bob', 'bob-secret'))?.username, 'bob');
    assert.equal(await startTLS.authenticate('bob', 'wrong'), undefined);
  });

  it('refuses a certificate it cannot verify, and says why', async () => {
    const other = await createTlsMaterial({ dnsNames: ['elsewhere.test'] });
    const wrongCA = directory({ url: ldap.ldapsUrl, caFile: other.caCert });
    await rejectsUnavailable(wrongCA.check(), /127\.0\.0\.1:\d+.*TLS certificate refused: signed by an unknown CA/);
    await rejectsUnavailable(wrongCA.authenticate('alice', 'alice-secret'), /TLS certificate refused/);
    await rejectsUnavailable(directory({ startTLS: true, caFile: other.caCert }).check(), /TLS certificate refused: signed by an unknown CA/);
    await rejectsUnavailable(directory({ url: ldap.ldapsUrl }).check(), /TLS certificate refused/);
    const port = new URL(ldap.ldapsUrl).port;
    await rejectsUnavailable(directory({ url: `ldaps://localhost:${port}`, caFile: ldap.caFile }).check(), /hostname mismatch: the certificate is not valid for localhost/);
    // insecure accepts anything (and warns).
    await directory({ url: ldap.ldapsUrl, insecure: true }).check();
    assert.ok(logLines.some((l) => l['msg'] === 'ldap tls certificate verification is off (auth.ldap.insecure)'));
    await rm(other.dir, { recursive: true, force: true });
  });

  it('refuses a CA file it cannot read when constructed', () => {
    assert.throws(() => new LdapDirectory(config({ caFile: '/nonexistent/ca.pem' }), log), /auth\.ldap\.caFile \/nonexistent\/ca\.pem: cannot read it \(ENOENT\)/);
  });
});

describe('start-up check', () => {
  it('passes on a good configuration and names what is wrong otherwise', async () => {
    await directory().check();
    await rejectsUnavailable(directory({ bindPassword: 'not-it' }).check(), /service bind refused \(invalid auth\.ldap\.bindDN or bindPassword/);
    await rejectsUnavailable(directory({ baseDN: 'ou=missing,dc=berth,dc=test' }).check(), /auth\.ldap\.baseDN ou=missing,dc=berth,dc=test not found/);
    await rejectsUnavailable(directory({ url: `ldap://127.0.0.1:${await freePort()}` }).check(), /cannot connect to 127\.0\.0\.1:\d+/);
    await rejectsUnavailable(directory({ bindPassword: 'not-it' }).lookup('alice'), /service bind refused/);
    await rejectsUnavailable(directory({ baseDN: 'ou=missing,dc=berth,dc=test' }).authenticate('alice', 'alice-secret'), /not found/);
  });
});

describe('connections and the bind cache', () => {
  it('shares a bounded pool: 50 parallel look-ups over 2 connections', async () => {
    const d = directory({ poolSize: 2 });
    const before = await connectionsTo(ldap.url);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => d.lookup(['alice', 'bob', 'carol'][i % 3] as string)));
    assert.ok(results.every((r) => r !== undefined));
    assert.ok((await connectionsTo(ldap.url)) - before <= 2, 'at most poolSize service connections stay open');
    await d.close();
    await sleep(100);
    assert.equal(await connectionsTo(ldap.url), before);
  });

  it('answers a repeated sign-in from the cache, even while the directory is down', async () => {
    const d = directory({ cacheTTL: 60 });
    assert.equal((await d.authenticate('bob', 'bob-secret'))?.username, 'bob');
    await ldap.stop();
    try {
      const started = Date.now();
      assert.equal((await d.authenticate('bob', 'bob-secret'))?.username, 'bob');
      await rejectsUnavailable(d.authenticate('bob', 'wrong-secret'), /cannot connect to 127\.0\.0\.1:\d+ \(connection refused\)/);
      await rejectsUnavailable(d.authenticate('alice', 'alice-secret'), /cannot connect/);
      await rejectsUnavailable(d.lookup('bob'), /cannot connect|connection .* lost/);
      d.forget('bob');
      await rejectsUnavailable(d.authenticate('bob', 'bob-secret'), /cannot connect/);
      assert.ok(Date.now() - started < 5_000, 'a refused connection fails fast');
    } finally {
      await ldap.start();
    }
    // The pooled connections died with the directory: they are replaced.
    assert.equal((await d.lookup('bob'))?.username, 'bob');
    assert.equal((await d.authenticate('alice', 'alice-secret'))?.username, 'alice');
  });

  it('gives up on a directory that stops answering within the timeout, and recovers', async () => {
    const d = directory({ timeout: 1 });
    assert.ok(await d.lookup('alice'));
    ldap.pause();
    try {
      const started = Date.now();
      await rejectsUnavailable(d.authenticate('carol', 'carol-secret'), /no answer within 1 s|within 1 s/);
      await rejectsUnavailable(d.lookup('alice'), /within 1 s/);
      assert.ok(Date.now() - started < 8_000, `bounded by the timeout (took ${Date.now() - started} ms)`);
    } finally {
      ldap.resume();
    }
    assert.equal((await d.authenticate('carol', 'carol-secret'))?.username, 'carol');
  });

  it('forgets a removed user: look-up at once, sign-in after the cache TTL', async () => {
    const d = directory({ cacheTTL: 1 });
    assert.equal((await d.authenticate('erin', 'erin-secret'))?.username, 'erin');
    await ldap.delete(ldap.userDN('erin'));
    assert.equal(await d.lookup('erin'), undefined);
    assert.equal((await d.authenticate('erin', 'erin-secret'))?.username, 'erin', 'still cached within the TTL');
    await sleep(1_100);
    assert.equal(await d.authenticate('erin', 'erin-secret'), undefined);
  });

  it('never writes a password to the log', () => {
    const text = JSON.stringify(logLines);
    for (const secret of [ldap.servicePassword, ...DEFAULT_USERS.map((u) => u.password), 'erin-secret', 'not-it']) {
      assert.ok(!text.includes(secret), 'a password reached the log');
    }
  });
});

// A real OpenLDAP directory for tests: Debian's slapd in a temp dir with its own slapd.conf, an mdb
// database under dc=berth,dc=test loaded with users and groups, plain LDAP (StartTLS offered) and
// LDAPS with a throw-away CA. Stopped by pid; stop()/start() simulate an outage on the same ports.
//
//   const ldap = await startSlapd();               // default people and groups, see DEFAULT_USERS
//   ldap.url, ldap.ldapsUrl, ldap.caFile, ldap.serviceDN / ldap.servicePassword, ldap.userDN('alice')
//   await ldap.delete(ldap.userDN('bob')); await ldap.stop(); await ldap.start(); await ldap.close();
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ManagedProcess, startProcess, tailFile } from './processes.ts';
import { run } from './run.ts';
import { ensurePackages, findBinary, freePort, tmpDir, waitForTcp } from './system.ts';
import { createTlsMaterial } from './tls.ts';

/** A person in the test directory (an inetOrgPerson under ou=people). */
export interface SlapdUser {
  readonly uid: string;
  readonly password: string;
  /** Default `<uid>@berth.test`; null: no mail attribute. */
  readonly mail?: string | null;
  /** e.g. `disabled`, for a userFilter that excludes such entries. */
  readonly employeeType?: string;
}

/** A groupOfNames under ou=groups. */
export interface SlapdGroup {
  readonly cn: string;
  /** uids of member people. */
  readonly members?: readonly string[];
  /** cns of member groups (nested groups). */
  readonly memberGroups?: readonly string[];
}

/** Options for {@link startSlapd}. */
export interface SlapdOptions {
  /** Default {@link DEFAULT_USERS}. */
  readonly users?: readonly SlapdUser[];
  /** Default {@link DEFAULT_GROUPS}. */
  readonly groups?: readonly SlapdGroup[];
}

/** A running test directory. */
export interface SlapdHandle {
  /** `ldap://127.0.0.1:PORT` (StartTLS available). */
  readonly url: string;
  /** `ldaps://127.0.0.1:PORT`. */
  readonly ldapsUrl: string;
  /** PEM of the CA that signed the server certificate (valid for 127.0.0.1 and ldap.berth.test, not for localhost). */
  readonly caFile: string;
  readonly baseDN: string;
  readonly peopleDN: string;
  readonly groupsDN: string;
  /** The service account Berth searches as (may read everything but passwords). */
  readonly serviceDN: string;
  readonly servicePassword: string;
  /** The test's own administrator (rootdn), used by add/modify/delete. */
  readonly rootDN: string;
  readonly rootPassword: string;
  readonly users: readonly SlapdUser[];
  readonly groups: readonly SlapdGroup[];
  readonly logFile: string;
  userDN(uid: string): string;
  groupDN(cn: string): string;
  /** ldapadd as the root DN; throws with ldapadd's output when it fails. */
  add(ldif: string): Promise<void>;
  /** ldapmodify as the root DN. */
  modify(ldif: string): Promise<void>;
  /** ldapdelete as the root DN. */
  delete(dn: string): Promise<void>;
  /** Stops slapd (SIGTERM by pid); the data stays for start(). */
  stop(): Promise<void>;
  /** Starts slapd again on the same ports and waits until it accepts connections. */
  start(): Promise<void>;
  /** SIGSTOP: connections are accepted by the kernel but nothing answers (a hung directory). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stops slapd and removes its directory. */
  close(): Promise<void>;
}

/** The default people: passwords are `<uid>-secret`; dave is disabled. */
export const DEFAULT_USERS: readonly SlapdUser[] = [
  { uid: 'alice', password: 'alice-secret' },
  { uid: 'bob', password: 'bob-secret' },
  { uid: 'carol', password: 'carol-secret' },
  { uid: 'dave', password: 'dave-secret', employeeType: 'disabled' },
  { uid: 'root-admin', password: 'root-admin-secret' },
];

/** The default groups: carol is a developer only through `platform` (nested). */
export const DEFAULT_GROUPS: readonly SlapdGroup[] = [
  { cn: 'developers', members: ['alice'], memberGroups: ['platform'] },
  { cn: 'platform', members: ['carol'] },
  { cn: 'readers', members: ['alice', 'bob'] },
  { cn: 'registry-admins', members: ['root-admin'] },
];

const SUFFIX = 'dc=berth,dc=test';

/** `{SSHA}` as OpenLDAP stores it: base64(sha1(password + salt) + salt). */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** Installs slapd and ldap-utils when missing, without letting the package start a system slapd on port 389. */
async function ensureSlapdInstalled(): Promise<void> {
  const needs = [
    { binary: 'slapd', pkg: 'slapd' },
    { binary: 'slapadd', pkg: 'slapd' },
    { binary: 'ldapadd', pkg: 'ldap-utils' },
  ];
  let missing = false;
  for (const n of needs) if (!(await findBinary(n.binary))) missing = true;
  if (!missing) return;
  const policy = '/usr/sbin/policy-rc.d';
  const ours = process.getuid?.() === 0 && !existsSync(policy);
  // invoke-rc.d asks policy-rc.d before starting a service; 101 means "not allowed".
  if (ours) await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    await ensurePackages(needs);
  } finally {
    if (ours) await rm(policy, { force: true });
  }
}

function ldifFor(users: readonly SlapdUser[], groups: readonly SlapdGroup[], service: { dn: string; password: string }): string {
  const blocks: string[] = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: berth\no: Berth test`,
    `dn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services`,
    `dn: ${service.dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: berth-service\nuserPassword: ${ssha(service.password)}`,
  ];
  for (const u of users) {
    const lines = [
      `dn: uid=${u.uid},ou=people,${SUFFIX}`,
      'objectClass: inetOrgPerson',
      `uid: ${u.uid}`,
      `cn: ${u.uid}`,
      `sn: ${u.uid}`,
      `userPassword: ${ssha(u.password)}`,
    ];
    if (u.mail !== null) lines.push(`mail: ${u.mail ?? `${u.uid}@berth.test`}`);
    if (u.employeeType) lines.push(`employeeType: ${u.employeeType}`);
    blocks.push(lines.join('\n'));
  }
  for (const g of groups) {
    const members = [
      ...(g.members ?? []).map((uid) => `uid=${uid},ou=people,${SUFFIX}`),
      ...(g.memberGroups ?? []).map((cn) => `cn=${cn},ou=groups,${SUFFIX}`),
    ];
    // groupOfNames requires a member; an otherwise empty group lists the root DN.
    if (members.length === 0) members.push(`cn=admin,${SUFFIX}`);
    blocks.push([`dn: cn=${g.cn},ou=groups,${SUFFIX}`, 'objectClass: groupOfNames', `cn: ${g.cn}`, ...members.map((m) => `member: ${m}`)].join('\n'));
  }
  return `${blocks.join('\n\n')}\n`;
}

/**
 * Starts a fresh slapd with the given (or default) users and groups; resolves once it accepts
 * connections. Installs slapd/ldap-utils when missing (root only; otherwise throws naming them).
 * The caller must close() it (e.g. in after()).
 */
export async function startSlapd(options: SlapdOptions = {}): Promise<SlapdHandle> {
  await ensureSlapdInstalled();
  const users = options.users ?? DEFAULT_USERS;
  const groups = options.groups ?? DEFAULT_GROUPS;
  const dir = await tmpDir('berth-slapd');
  try {
    return await setUp(dir, users, groups);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function setUp(dir: string, users: readonly SlapdUser[], groups: readonly SlapdGroup[]): Promise<SlapdHandle> {
  await mkdir(path.join(dir, 'tls'));
  const tls = await createTlsMaterial({ dnsNames: ['ldap.berth.test'], ipAddresses: ['127.0.0.1'], dir: path.join(dir, 'tls') });
  const [port, tlsPort] = [await freePort(), await freePort()];
  const rootDN = `cn=admin,${SUFFIX}`;
  const rootPassword = randomBytes(12).toString('hex');
  const service = { dn: `cn=berth-service,ou=services,${SUFFIX}`, password: randomBytes(12).toString('hex') };
  const conf = path.join(dir, 'slapd.conf');
  const passFile = path.join(dir, 'root.pass');
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'slapd.log');
  await mkdir(dataDir);
  await writeFile(passFile, rootPassword, { mode: 0o600 });
  await writeFile(
    conf,
    [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `pidfile ${path.join(dir, 'slapd.pid')}`,
      `argsfile ${path.join(dir, 'slapd.args')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `TLSCACertificateFile ${tls.caCert}`,
      `TLSCertificateFile ${tls.serverCert}`,
      `TLSCertificateKeyFile ${tls.serverKey}`,
      'database mdb',
      'maxsize 67108864',
      `suffix "${SUFFIX}"`,
      `rootdn "${rootDN}"`,
      `rootpw ${ssha(rootPassword)}`,
      `directory ${dataDir}`,
      'index objectClass eq',
      'index uid,cn,member eq',
      'access to attrs=userPassword by self write by anonymous auth by * none',
      'access to * by * read',
      '',
    ].join('\n'),
  );
  const ldif = path.join(dir, 'initial.ldif');
  await writeFile(ldif, ldifFor(users, groups, service));
  await run('slapadd', ['-q', '-f', conf, '-l', ldif]);

  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${tlsPort}`;
  let proc: ManagedProcess | undefined;
  const start = async (): Promise<void> => {
    if (proc && !proc.exitDescription()) return;
    // -d keeps slapd in the foreground (our child, stopped by pid); level 0 keeps the log quiet.
    const started = await startProcess({ name: 'slapd', command: 'slapd', args: ['-f', conf, '-h', `${url}/ ${ldapsUrl}/`, '-d', '0'], logFile });
    proc = started;
    try {
      await waitForTcp('127.0.0.1', port, { timeoutMs: 20_000, abortIf: () => started.exitDescription() });
      await waitForTcp('127.0.0.1', tlsPort, { timeoutMs: 20_000, abortIf: () => started.exitDescription() });
    } catch (error) {
      await started.stop();
      throw new Error(`slapd did not start: ${(error as Error).message}\n${await tailFile(logFile)}`);
    }
  };
  const stop = async (): Promise<void> => {
    // A paused slapd cannot act on SIGTERM.
    if (proc && !proc.exitDescription()) process.kill(proc.pid, 'SIGCONT');
    await proc?.stop({ termTimeoutMs: 10_000 });
  };
  const tool = async (command: string, args: readonly string[], input?: string): Promise<void> => {
    await run(command, ['-x', '-H', url, '-D', rootDN, '-y', passFile, ...args], { input, timeoutMs: 30_000 });
  };
  await start();
  return {
    url,
    ldapsUrl,
    caFile: tls.caCert,
    baseDN: SUFFIX,
    peopleDN: `ou=people,${SUFFIX}`,
    groupsDN: `ou=groups,${SUFFIX}`,
    serviceDN: service.dn,
    servicePassword: service.password,
    rootDN,
    rootPassword,
    users,
    groups,
    logFile,
    userDN: (uid) => `uid=${uid},ou=people,${SUFFIX}`,
    groupDN: (cn) => `cn=${cn},ou=groups,${SUFFIX}`,
    add: (text) => tool('ldapadd', [], text),
    modify: (text) => tool('ldapmodify', [], text),
    delete: (dn) => tool('ldapdelete', [dn]),
    stop,
    start,
    pause: () => {
      if (proc && !proc.exitDescription()) process.kill(proc.pid, 'SIGSTOP');
    },
    resume: () => {
      if (proc && !proc.exitDescription()) process.kill(proc.pid, 'SIGCONT');
    },
    close: async () => {
      try {
        await stop();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

// docker and skopeo push and pull as people of the company's directory and identity provider, with
// permissions that come only from their groups: an LDAP user with the directory password (through
// the token service), and an OIDC user with the personal access token they made after signing in
// through the provider. Real slapd, a real OpenID provider (oidc-provider), real dockerd and skopeo,
// Berth as its own process (once in each auth.mode).
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { type BerthServer, startBerth } from '../support/berth.ts';
import { type ClientRun, ClientFailure, pushPullDocker, pushPullSkopeo, type RegistryTarget } from '../support/clients.ts';
import { type Dockerd, startDockerd } from '../support/dockerd.ts';
import { createRandomImage, type RandomImage } from '../support/images.ts';
import { generateSigningKey, signInWithForm, startOidcProvider, type OidcProviderHandle } from '../support/oidc-provider.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { rememberSecret } from '../support/secrets.ts';
import { startSlapd, type SlapdHandle } from '../support/slapd.ts';
import { E2E_PACKAGES, ensurePackages, freePort, tmpDir } from '../support/system.ts';

const LAYER_SIZES = [300_000, 2_000];

describe('docker and skopeo as LDAP and OIDC users, permissions from groups only', { timeout: 10 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let ldap: SlapdHandle;
  let provider: OidcProviderHandle;
  let ldapBerth: BerthServer;
  let oidcBerth: BerthServer;
  let dockerd: Dockerd;

  /** Berth as a process, with `auth` in a YAML config file. */
  async function berthWith(port: number, auth: Record<string, unknown>): Promise<BerthServer> {
    const dir = await tmpDir('berth-sso-config');
    scratch.push(dir);
    const file = path.join(dir, 'berth.yaml');
    await writeFile(file, stringify({ auth }), { mode: 0o600 });
    const server = await startBerth({ port, externalUrl: `http://localhost:${port}`, env: { BERTH_CONFIG: file }, registry });
    scratch.push(server.dataDir, path.dirname(server.logFile));
    return server;
  }

  const adminAuth = (server: BerthServer) => `Basic ${Buffer.from(`admin:${server.adminPassword}`).toString('base64')}`;
  async function call(server: BerthServer, method: string, apiPath: string, body?: unknown, auth = adminAuth(server)): Promise<Response> {
    return fetch(`${server.url}/api/v1${apiPath}`, { method, headers: { Authorization: auth, 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  }
  async function ok(res: Response, status: number): Promise<Record<string, unknown>> {
    const text = await res.text();
    assert.equal(res.status, status, `${res.url}: ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }
  /** A project whose only member (besides admin) is `group` with `role`. */
  async function projectForGroup(server: BerthServer, project: string, group: string, role: string): Promise<void> {
    await ok(await call(server, 'POST', '/projects', { name: project }), 201);
    await ok(await call(server, 'POST', `/projects/${project}/members`, { group, role }), 201);
  }
  async function image(): Promise<RandomImage> {
    const made = await createRandomImage({ layerSizes: LAYER_SIZES });
    scratch.push(made.dir);
    return made;
  }
  const target = (server: BerthServer, username: string, password: string, repository: string, tag: string): RegistryTarget => ({
    registryHost: `localhost:${server.port}`,
    username,
    password,
    repository,
    tag,
    tls: 'plain',
  });

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error('this suite must run as root: it runs dockerd');
    await ensurePackages(E2E_PACKAGES);
    ldap = await startSlapd();
    registry.defer('slapd', () => ldap.close());
    for (const u of ldap.users) rememberSecret(u.password, u.uid);

    const ldapPort = await freePort();
    ldapBerth = await berthWith(ldapPort, {
      mode: 'ldap',
      ldap: { url: ldap.url, startTLS: true, caFile: ldap.caFile, bindDN: ldap.serviceDN, bindPassword: ldap.servicePassword, baseDN: ldap.peopleDN, groupBaseDN: ldap.groupsDN, nestedGroups: 'search' },
    });

    const oidcPort = await freePort();
    const clientSecret = `client-secret-${Math.random().toString(36).slice(2)}`;
    rememberSecret(clientSecret, 'oidc client');
    provider = await startOidcProvider({
      clients: [{ clientId: 'berth', clientSecret, redirectUris: [`http://localhost:${oidcPort}/api/v1/auth/oidc/callback`] }],
      users: [
        { sub: 'u-erin', login: 'erin', password: 'erin-password', claims: { preferred_username: 'erin', email: 'erin@example.test', groups: ['platform-team'] } },
        { sub: 'u-frank', login: 'frank', password: 'frank-password', claims: { preferred_username: 'frank', groups: ['auditors'] } },
      ],
      keys: [await generateSigningKey()],
    });
    registry.defer('oidc provider', () => provider.stop());
    oidcBerth = await berthWith(oidcPort, { mode: 'oidc', oidc: { issuer: provider.issuer, clientId: 'berth', clientSecret, scopes: ['openid', 'profile', 'email', 'groups'] } });

    dockerd = await startDockerd({ registry });
  });

  after(async () => {
    await registry.stopAll();
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  });

  test('an LDAP user pushes and pulls with the directory password, as developer through the group developers', async () => {
    await projectForGroup(ldapBerth, 'ldap-devs', 'developers', 'developer');
    const alice = ldap.users.find((u) => u.uid === 'alice')!;
    await stored(ldapBerth, await pushPullDocker(target(ldapBerth, 'alice', alice.password, 'ldap-devs/docker', 'v1'), await image(), { dockerEnv: dockerd.env }));
    // carol is in developers only through the nested group platform.
    const carol = ldap.users.find((u) => u.uid === 'carol')!;
    await stored(ldapBerth, await pushPullSkopeo(target(ldapBerth, 'carol', carol.password, 'ldap-devs/skopeo', 'v1'), await image()));
    // bob is in no group with a role here: his push is refused.
    const bob = ldap.users.find((u) => u.uid === 'bob')!;
    await assert.rejects(pushPullSkopeo(target(ldapBerth, 'bob', bob.password, 'ldap-devs/bob', 'v1'), await image()), (err: unknown) => {
      assert.ok(err instanceof ClientFailure);
      assert.match(err.message, /403 \(Forbidden\)|denied/i);
      return true;
    });
  });

  test('an OIDC user signs in through the provider, makes a personal access token, and pushes and pulls with it', async () => {
    await projectForGroup(oidcBerth, 'oidc-devs', 'platform-team', 'developer');
    const token = await personalTokenThroughProvider(oidcBerth, 'erin', 'erin-password');
    await stored(oidcBerth, await pushPullDocker(target(oidcBerth, 'erin', token, 'oidc-devs/docker', 'v1'), await image(), { dockerEnv: dockerd.env }));
    await stored(oidcBerth, await pushPullSkopeo(target(oidcBerth, 'erin', token, 'oidc-devs/skopeo', 'v1'), await image()));
    // frank's groups give him nothing in this project.
    const franks = await personalTokenThroughProvider(oidcBerth, 'frank', 'frank-password');
    await assert.rejects(pushPullSkopeo(target(oidcBerth, 'frank', franks, 'oidc-devs/frank', 'v1'), await image()), ClientFailure);
    // The password itself is not a registry credential for an OIDC user.
    const refused = await fetch(`${oidcBerth.url}/service/token?service=berth`, { headers: { Authorization: `Basic ${Buffer.from('erin:erin-password').toString('base64')}` } });
    assert.equal(refused.status, 401);
    assert.match(await refused.text(), /personal access token/);
  });

  /** Asserts Berth holds what the client says it pushed (the tag names the digest it reported), as the admin sees it. */
  async function stored(server: BerthServer, run: ClientRun): Promise<void> {
    const [, repository, tag] = /^[^/]+\/(.+):([^:]+)$/.exec(run.reference)!;
    const res = await fetch(`${server.url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { Authorization: adminAuth(server), Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
    assert.equal(res.status, 200, `${run.reference} is stored`);
    assert.equal(res.headers.get('docker-content-digest'), run.manifestDigest);
  }

  /**
   * The portal's sign-in over plain HTTP: Berth's login redirect, the provider's form, Berth's
   * callback (a session cookie), then a personal access token made with that fresh session.
   */
  async function personalTokenThroughProvider(server: BerthServer, login: string, password: string): Promise<string> {
    rememberSecret(password, login);
    const start = await fetch(`${server.url}/api/v1/auth/oidc/login`, { redirect: 'manual' });
    assert.equal(start.status, 302, await start.text());
    const jar = cookiesOf(start);
    const callback = await signInWithForm(start.headers.get('location')!, login, password);
    const done = await fetch(callback, { redirect: 'manual', headers: { Cookie: jar } });
    assert.equal(done.status, 302, await done.text());
    const session = cookiesOf(done);
    assert.match(session, /berth_session=/);
    const created = await fetch(`${server.url}/api/v1/users/me/tokens`, {
      method: 'POST',
      headers: { Cookie: session, 'Content-Type': 'application/json', 'X-Berth-Request': '1' },
      body: JSON.stringify({ name: 'docker', expiresInDays: 1 }),
    });
    const body = await ok(created, 201);
    rememberSecret(body.token as string);
    return body.token as string;
  }
});

/** `name=value; …` of the cookies a response sets (for the next request of the same "browser"). */
function cookiesOf(res: Response): string {
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .filter((c) => !c.endsWith('='))
    .join('; ');
}

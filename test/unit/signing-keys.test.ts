// The token signing key: auth.signingKey (Ed25519, P-256 or RSA) first, else the key file under
// dataDir on SQLite, else the key kept in the database on PostgreSQL. Tokens of each key type are
// standard JWS (jose verifies them); an unusable key file is a ConfigError that never shows the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { loadSigningKey, readSigningKeyFile, type SigningKey } from '../../src/auth/keys.ts';
import { TokenService } from '../../src/auth/tokens.ts';
import { ConfigError } from '../../src/config/overrides.ts';
import { DIALECTS, withMetadataOn } from '../support/metadata.ts';

const SETTINGS = { issuer: 'berth', service: 'registry', ttl: 300, refreshTTL: 3600 };

function pemFile(dir: string, name: string, key: KeyObject | string): string {
  const file = join(dir, name);
  writeFileSync(file, typeof key === 'string' ? key : (key.export({ format: 'pem', type: 'pkcs8' }) as string));
  return file;
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-keys-'));
  try {
    await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('Ed25519, P-256 and RSA keys sign tokens that jose and every replica with the key verify', async () => {
  await withDir(async (dir) => {
    const keys = {
      EdDSA: generateKeyPairSync('ed25519').privateKey,
      ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    };
    const services: TokenService[] = [];
    for (const [alg, privateKey] of Object.entries(keys)) {
      const file = pemFile(dir, `${alg}.pem`, privateKey);
      const one = new TokenService(readSigningKeyFile(file), SETTINGS);
      const other = new TokenService(readSigningKeyFile(file), SETTINGS);
      const { token } = await one.issueAccess('alice', [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, alg);
      const { payload } = await jwtVerify(token, readSigningKeyFile(file).publicKey, { issuer: 'berth', audience: 'registry', algorithms: [alg] });
      assert.equal(payload.sub, 'alice', `${alg}: jose accepts the token`);
      assert.equal((await other.verifyAccess(token)).subject, 'alice', `${alg}: another replica with the key accepts it`);
      const refresh = await other.issueRefresh('alice', { cred: 'pw:0' });
      assert.equal((await one.verifyRefresh(refresh)).subject, 'alice');
      const [h, p, sig] = token.split('.') as [string, string, string];
      await assert.rejects(other.verifyAccess(`${h}.${p}.${sig.slice(0, -4)}AAAA`), /token invalid/, `${alg}: a changed signature fails`);
      services.push(one);
    }
    // A token of one key (and algorithm) is refused by a service with another.
    const { token } = await services[0]!.issueAccess('alice', []);
    for (const service of services.slice(1)) await assert.rejects(service.verifyAccess(token), /token invalid/);
  });
});

test('an unusable auth.signingKey is a ConfigError naming the setting, never quoting the file', async () => {
  await withDir(async (dir) => {
    const secretLooking = 'TOP-SECRET-MATERIAL-0123456789';
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.pem'), /cannot be read \(ENOENT\)/],
      [pemFile(dir, 'garbage.pem', `-----BEGIN PRIVATE KEY-----\n${secretLooking}\n-----END PRIVATE KEY-----\n`), /not a PEM private key/],
      [pemFile(dir, 'public.pem', generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }) as string), /not a PEM private key/],
      [pemFile(dir, 'encrypted.pem', generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: secretLooking }) as string), /the key is encrypted/],
      [pemFile(dir, 'p384.pem', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey), /secp384r1 key cannot sign tokens; use Ed25519, ECDSA P-256 or RSA/],
      [pemFile(dir, 'rsa1024.pem', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey), /an RSA key of 1024 bits cannot sign tokens/],
    ];
    for (const [file, why] of cases) {
      assert.throws(
        () => readSigningKeyFile(file),
        (err: unknown) => err instanceof ConfigError && err.message.startsWith(`auth.signingKey ${file}: `) && why.test(err.message) && !err.message.includes(secretLooking),
        file,
      );
    }
  });
});

for (const dialect of DIALECTS) {
  test(`${dialect}: auth.signingKey takes precedence; otherwise the key is ${dialect === 'sqlite' ? 'the file under dataDir' : 'kept in the database'}`, async () => {
    await withMetadataOn(dialect, async (meta, place) => {
      const file = pemFile(place.dataDir, 'given.pem', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
      const given = await loadSigningKey({ ...place.config, auth: { ...place.config.auth, signingKey: file } }, meta);
      assert.equal(given.kid, readSigningKeyFile(file).kid);
      assert.equal(await meta.signingKeys.find('token'), undefined, 'nothing stored for a given key');
      assert.equal(existsSync(join(place.dataDir, 'keys')), false, 'nor a key file made');

      const own: SigningKey = await loadSigningKey(place.config, meta);
      assert.equal((await loadSigningKey(place.config, meta)).kid, own.kid, 'the same key on every start');
      assert.equal(own.privateKey.asymmetricKeyType, 'ed25519');
      if (dialect === 'sqlite') {
        assert.ok(existsSync(join(place.dataDir, 'keys', 'token-signing.pem')));
        assert.equal(await meta.signingKeys.find('token'), undefined);
      } else {
        assert.ok(await meta.signingKeys.find('token'));
        assert.equal(existsSync(join(place.dataDir, 'keys')), false, 'no file: a replica never makes a key of its own');
      }
    });
  });
}

// Throw-away certificate authority and server certificate, made with the openssl CLI.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { run } from './run.ts';
import { ensurePackages, tmpDir } from './system.ts';

/** Paths of the generated PEM files. */
export interface TlsMaterial {
  /** Directory holding all files (ca.crt, ca.key, server.crt, server.key). */
  readonly dir: string;
  /** CA certificate that clients must trust. */
  readonly caCert: string;
  /** Server certificate (leaf only, signed by the CA). */
  readonly serverCert: string;
  /** Unencrypted server private key. */
  readonly serverKey: string;
}

/** What the server certificate must be valid for. */
export interface TlsOptions {
  /** DNS names for the subjectAltName; the first is also the CN. */
  readonly dnsNames: readonly string[];
  /** IP addresses for the subjectAltName. */
  readonly ipAddresses?: readonly string[];
  /** Where to write the files; default a fresh temp dir. */
  readonly dir?: string;
  /**
   * Exact validity window of the server certificate (default: now for two days), e.g. one that
   * ended yesterday to test expiry. OpenSSL 3.0's `x509 -req` only knows `-days`, so a window is
   * signed with `openssl ca`, which takes `-startdate`/`-enddate`.
   */
  readonly validity?: { readonly notBefore: Date; readonly notAfter: Date };
}

/** `YYYYMMDDHHMMSSZ`, the GeneralizedTime form `openssl ca -startdate/-enddate` accepts. */
function opensslTime(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/** The smallest `openssl ca` configuration: a database in `dir`, any subject, extensions from -extfile. */
async function writeCaConfig(dir: string): Promise<string> {
  const file = path.join(dir, 'ca.cnf');
  await mkdir(path.join(dir, 'issued'), { recursive: true });
  await writeFile(path.join(dir, 'index.txt'), '');
  await writeFile(path.join(dir, 'serial'), `${randomBytes(8).toString('hex')}\n`);
  await writeFile(file, [
    '[ ca ]',
    'default_ca = test_ca',
    '[ test_ca ]',
    `database = ${path.join(dir, 'index.txt')}`,
    `new_certs_dir = ${path.join(dir, 'issued')}`,
    `serial = ${path.join(dir, 'serial')}`,
    'default_md = sha256',
    'policy = any_subject',
    'unique_subject = no',
    '[ any_subject ]',
    'commonName = supplied',
    '',
  ].join('\n'));
  return file;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * Creates a CA valid for two days and a server certificate signed by it, with the given DNS names
 * (and IPs) as subjectAltName — Go clients ignore the CN, so the SAN is what counts. The server
 * certificate is valid for two days from now, or for `validity`.
 */
export async function createTlsMaterial(options: TlsOptions): Promise<TlsMaterial> {
  const first = options.dnsNames[0];
  if (first === undefined) throw new Error('createTlsMaterial needs at least one DNS name');
  for (const ip of options.ipAddresses ?? []) if (!net.isIP(ip)) throw new Error(`not an IP address: ${ip}`);
  await ensurePackages([{ binary: 'openssl', pkg: 'openssl' }]);
  const dir = options.dir ?? (await tmpDir('berth-tls'));
  const file = (name: string): string => path.join(dir, name);

  await run('openssl', [
    'req', '-x509', ...EC_KEY, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2',
    '-subj', `/CN=Berth test CA ${Date.now()}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', '-new', ...EC_KEY, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', `/CN=${first}`]);
  const san = [...options.dnsNames.map((n) => `DNS:${n}`), ...(options.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
  await writeFile(
    file('server.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${san.join(',')}`,
      '',
    ].join('\n'),
  );
  if (options.validity) {
    await run('openssl', [
      'ca', '-batch', '-notext', '-config', await writeCaConfig(dir), '-cert', file('ca.crt'), '-keyfile', file('ca.key'),
      '-in', file('server.csr'), '-out', file('server.crt'), '-extfile', file('server.ext'),
      '-startdate', opensslTime(options.validity.notBefore), '-enddate', opensslTime(options.validity.notAfter),
    ]);
  } else {
    await run('openssl', [
      'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
      '-CAcreateserial', '-out', file('server.crt'), '-days', '2', '-sha256', '-extfile', file('server.ext'),
    ]);
  }
  return { dir, caCert: file('ca.crt'), serverCert: file('server.crt'), serverKey: file('server.key') };
}

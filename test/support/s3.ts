// A real S3-protocol server for tests: moto's S3 server (see ../shared/design/TESTING.md).
//
// Why moto: Debian 12 packages no S3 server and pip cannot reach its index here; moto (Debian
// trixie's python3-moto, pure Python, on bookworm's python3) implements the multipart API the
// driver depends on — ListParts with paging, AbortMultipartUpload, UploadPartCopy, the part-size
// minimum (EntityTooSmall) and S3-style multipart ETags — plus suffix ranges, DeleteObjects and
// ListObjectsV2 paging. s3rver (npm) lacks ListParts/Abort/UploadPartCopy, answers suffix ranges
// and ETags wrongly, and corrupts streamed uploads sent with the current SDK's default checksums.
// moto checks neither signatures nor pre-signed expiry, so no test may rely on either.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startProcess, tailFile } from './processes.ts';
import { cleanEnv, run } from './run.ts';
import { freePort, tmpDir, waitForHttp } from './system.ts';

/** A running S3 server on 127.0.0.1 (moto: it accepts any credentials; these are what to send). */
export interface S3Server {
  /** `http://127.0.0.1:<port>`; path-style addressing (`forcePathStyle: true`). */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The server's process id; 0 for a server this process reuses but did not start. */
  readonly pid: number;
  /** Creates a bucket; creating one that exists is a no-op. */
  createBucket(name: string): Promise<void>;
  /** Stops the server by its pid (its state, kept in memory, is gone); a no-op for a shared one. */
  stop(): Promise<void>;
}

/** Bookworm's packages moto needs (moto itself comes from trixie, see {@link ensureMoto}). */
const PYTHON_PACKAGES = [
  'python3-boto3',
  'python3-werkzeug',
  'python3-flask',
  'python3-flask-cors',
  'python3-responses',
  'python3-xmltodict',
  'python3-dateutil',
  'python3-jinja2',
  'python3-requests',
  'python3-cryptography',
];
/** Where the unpacked python3-moto is kept between runs (outside any work tree). */
const MOTO_DIR = '/var/cache/berth-test/moto';
const MOTO_SITE = join(MOTO_DIR, 'usr/lib/python3/dist-packages');
/** Bookworm's own interpreter: a pyenv `python3` earlier on PATH lacks the Debian packages. */
const PYTHON = '/usr/bin/python3';
const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };

async function missingDebianPackages(names: readonly string[]): Promise<string[]> {
  const result = await run('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...names], { allowFailure: true });
  const installed = new Set(
    result.stdout
      .split('\n')
      .filter((line) => line.endsWith(' install ok installed'))
      .map((line) => line.split(' ')[0]),
  );
  return names.filter((n) => !installed.has(n));
}

const asRoot = () => process.getuid?.() === 0;

/**
 * Makes sure moto can run: bookworm's Python packages through apt, and trixie's python3-moto
 * downloaded with a private apt configuration (the machine's sources stay untouched) and unpacked
 * into {@link MOTO_DIR} once. Installs only as root; otherwise throws naming what to install.
 */
async function ensureMoto(): Promise<void> {
  const missing = await missingDebianPackages(PYTHON_PACKAGES);
  const haveMoto = existsSync(join(MOTO_SITE, 'moto/server.py'));
  if (missing.length === 0 && haveMoto) return;
  if (!asRoot()) {
    const what = [...missing, ...(haveMoto ? [] : [`python3-moto from Debian trixie unpacked into ${MOTO_DIR}`])];
    throw new Error(`the S3 test server (moto) needs: ${what.join(', ')}; run the tests as root once to install them (apt-get install -y ${PYTHON_PACKAGES.join(' ')})`);
  }
  // Concurrent test processes may install at once: dpkg's lock is waited for, not failed on.
  const lock = ['-o', 'DPkg::Lock::Timeout=600'];
  if (missing.length > 0) {
    await run('apt-get', [...lock, 'update'], { env: cleanEnv(APT_ENV), timeoutMs: 600_000 });
    await run('apt-get', [...lock, 'install', '-y', ...missing], { env: cleanEnv(APT_ENV), timeoutMs: 900_000 });
  }
  if (!haveMoto) await downloadMoto();
}

async function downloadMoto(): Promise<void> {
  const apt = await tmpDir('berth-apt-trixie');
  try {
    const sources = await readFile('/etc/apt/sources.list.d/debian.sources', 'utf8');
    // The machine's own mirror, whatever it is: its first URIs line.
    const uris = /^URIs:\s*(\S+)/m.exec(sources)?.[1];
    if (!uris) throw new Error('no URIs line in /etc/apt/sources.list.d/debian.sources to fetch python3-moto from');
    await mkdir(join(apt, 'sources'));
    await mkdir(join(apt, 'lists/partial'), { recursive: true });
    await mkdir(join(apt, 'cache/archives/partial'), { recursive: true });
    await writeFile(
      join(apt, 'sources/trixie.sources'),
      `Types: deb\nURIs: ${uris}\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
    );
    const options = [
      '-o', 'Dir::Etc::SourceList=/dev/null',
      '-o', `Dir::Etc::SourceParts=${join(apt, 'sources')}`,
      '-o', `Dir::State::Lists=${join(apt, 'lists')}`,
      '-o', `Dir::Cache=${join(apt, 'cache')}`,
    ];
    await run('apt-get', [...options, 'update'], { env: cleanEnv(APT_ENV), timeoutMs: 600_000 });
    await run('apt-get', [...options, 'download', 'python3-moto'], { env: cleanEnv(APT_ENV), cwd: apt, timeoutMs: 600_000 });
    const deb = (await readdir(apt)).find((f) => f.startsWith('python3-moto_') && f.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download python3-moto produced no .deb');
    // Unpacked beside the final place and renamed into it, so a concurrent run never sees half a package.
    await mkdir(join(MOTO_DIR, '..'), { recursive: true });
    const staging = await mkdtemp(`${MOTO_DIR}.partial-`);
    await run('dpkg-deb', ['-x', join(apt, deb), staging]);
    try {
      await rename(staging, MOTO_DIR);
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      if (!existsSync(join(MOTO_SITE, 'moto/server.py'))) throw err;
    }
  } finally {
    await rm(apt, { recursive: true, force: true });
  }
}

/** Any credentials work with moto; real-looking ones keep the SDK's signing path exercised. */
const ACCESS_KEY_ID = 'AKIABERTHTEST0000000';
const SECRET_ACCESS_KEY = 'berth-test-secret-access-key-not-real';
const REGION = 'us-east-1';

function serverAt(endpoint: string, pid: number, stop: () => Promise<void>): S3Server {
  return {
    endpoint,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    pid,
    async createBucket(name) {
      const client = new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY } });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } catch (err) {
        if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((err as Error).name)) throw err;
      } finally {
        client.destroy();
      }
    },
    stop,
  };
}

/**
 * Starts moto's S3 server on a free port of 127.0.0.1, installing it first if needed (see
 * {@link ensureMoto}). `partMinSize` lowers S3's 5 MiB minimum for every part but the last, so
 * tests can use tiny parts. Resolves once it answers; the caller stops it.
 */
export async function startS3(options: { partMinSize?: number; background?: boolean } = {}): Promise<S3Server> {
  await ensureMoto();
  const dir = await tmpDir('berth-moto');
  const port = await freePort();
  const env = cleanEnv({
    PYTHONPATH: MOTO_SITE,
    PYTHONDONTWRITEBYTECODE: '1',
    ...(options.partMinSize === undefined ? {} : { S3_UPLOAD_PART_MIN_SIZE: String(options.partMinSize) }),
  });
  const logFile = join(dir, 'moto.log');
  const proc = await startProcess({ name: 'moto', command: PYTHON, args: ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], env, logFile });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    // moto's root lists buckets (200) once it serves.
    await waitForHttp(`${endpoint}/`, { timeoutMs: 60_000, abortIf: () => proc.exitDescription() });
  } catch (err) {
    await proc.stop();
    throw new Error(`moto did not start: ${(err as Error).message}\n${await tailFile(logFile)}`);
  }
  // A server shared by a whole test process must not keep it alive: it is stopped at its exit.
  if (options.background) proc.unref();
  return serverAt(endpoint, proc.pid, async () => {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  });
}

let shared: Promise<S3Server> | undefined;

/** Reuses the server at env BERTH_TEST_S3_ENDPOINT when set (stop() a no-op), else starts one. */
export function sharedS3(): Promise<S3Server> {
  shared ??= (async () => {
    const reused = process.env.BERTH_TEST_S3_ENDPOINT;
    if (reused) return serverAt(reused, 0, async () => undefined);
    const server = await startS3({ background: true });
    // Started for the whole test process: stopped (by its pid) when the process exits.
    process.once('exit', () => {
      try {
        process.kill(server.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    });
    return { ...server, stop: async () => undefined };
  })();
  return shared;
}

/** A bucket name no other test uses (moto keeps buckets for the server's lifetime). */
export function uniqueBucket(prefix = 'berth'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

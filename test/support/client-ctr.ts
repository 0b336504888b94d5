// Push and pull with containerd's ctr (the push engine of BuildKit, nerdctl and current Docker).
import { randomBytes } from 'node:crypto';
import type { RandomImage } from './images.ts';
import { type ClientRun, type RegistryTarget, Session, referenceOf, verifyPulledImage } from './client-common.ts';
import { CommandError, describeResult } from './run.ts';

/** Which containerd to use. */
export interface CtrOptions {
  /** containerd's socket, e.g. Dockerd.containerdSocket. */
  readonly containerdSocket: string;
  /** containerd namespace; default a fresh `berth-e2e-<hex>` (removed afterwards). */
  readonly namespace?: string;
  /** Add `--http-dump` to push and pull, so a failure shows every request and response header. */
  readonly httpDump?: boolean;
  /** Bound on each ctr command; default DEFAULT_CLIENT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

/** Parses `ctr images ls` and returns the target digest of `reference`. */
function digestFromList(listing: string, reference: string): string | undefined {
  for (const line of listing.split('\n')) {
    const [name, , digest] = line.trim().split(/\s+/);
    if (name === reference) return digest;
  }
  return undefined;
}

/**
 * ctr images import (gzip-compressing the layers, as real pushes do), tag, push with --user,
 * delete the image and its content, pull, and check the pulled manifest, config and every layer
 * against the generated image. Plain targets use --plain-http, TLS targets --tlscacert.
 */
export async function pushPullCtr(target: RegistryTarget, image: RandomImage, options: CtrOptions): Promise<ClientRun> {
  const namespace = options.namespace ?? `berth-e2e-${randomBytes(4).toString('hex')}`;
  const session = new Session('ctr', {
    redact: [target.password],
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const ctr = ['-a', options.containerdSocket, '-n', namespace];
  const reference = referenceOf(target);
  const remote = [
    ...(target.tls === 'plain'
      ? ['--plain-http']
      : ['--tlscacert', target.tls.caFile, ...(target.tls.plainHttp ? ['--plain-http'] : [])]),
    '--user',
    `${target.username}:${target.password}`,
    ...(options.httpDump ? ['--http-dump'] : []),
  ];
  try {
    await session.run('ctr', [...ctr, 'images', 'import', '--no-unpack', '--compress-blobs', image.archivePath]);
    const imported = (await session.run('ctr', [...ctr, 'images', 'ls', '-q'])).stdout.trim().split('\n').filter(Boolean);
    if (imported.length !== 1 || !imported[0]) throw session.fail(`expected one imported image, got ${JSON.stringify(imported)}`);
    const local = imported[0];
    await session.run('ctr', [...ctr, 'images', 'tag', local, reference]);
    const listed = (await session.run('ctr', [...ctr, 'images', 'ls'])).stdout;
    const manifestDigest = digestFromList(listed, reference);
    if (!manifestDigest) throw session.fail(`no digest for ${reference} in:\n${listed}`);

    const pushed = await session.run('ctr', [...ctr, 'images', 'push', ...remote, reference], { allowFailure: true });
    if (pushed.code !== 0 || pushed.timedOut) {
      // ctr reads the layers from containerd's content store over gRPC while it uploads; under load
      // that read sometimes breaks (containerd/containerd#5734: "rpc error: code = Internal desc =
      // unexpected EOF") and ctr abandons its uploads. That failure is the client's own, never an
      // HTTP answer: only it is retried, once, and the retry must succeed. Anything else fails here.
      if (!/rpc error: code = Internal desc = unexpected EOF/.test(pushed.stderr)) throw session.fail(describeResult(pushed), new CommandError(pushed));
      await session.run('ctr', [...ctr, 'images', 'push', ...remote, reference]);
    }
    await session.run('ctr', [...ctr, 'images', 'rm', '--sync', local, reference]);
    const left = (await session.run('ctr', [...ctr, 'content', 'ls', '-q'])).stdout.trim();
    if (left) throw session.fail(`content left after ctr images rm --sync (pull would not download it):\n${left}`);

    await session.run('ctr', [...ctr, 'images', 'pull', '--snapshotter', 'native', ...remote, reference]);
    const pulledDigest = digestFromList((await session.run('ctr', [...ctr, 'images', 'ls'])).stdout, reference);
    if (pulledDigest !== manifestDigest) throw session.fail(`pulled manifest ${pulledDigest}, pushed ${manifestDigest}`);
    const readBlob = async (digest: string): Promise<Buffer> =>
      (await session.run('ctr', [...ctr, 'content', 'get', digest])).stdoutBytes;
    await verifyPulledImage(session, image, await readBlob(manifestDigest), readBlob);
    return { client: 'ctr', reference, manifestDigest, transcript: session.transcript };
  } finally {
    if (!options.namespace) {
      const names = (await session.run('ctr', [...ctr, 'images', 'ls', '-q'], { allowFailure: true })).stdout.trim();
      if (names) await session.run('ctr', [...ctr, 'images', 'rm', '--sync', ...names.split('\n')], { allowFailure: true });
      await session.run('ctr', ['-a', options.containerdSocket, 'namespaces', 'rm', namespace], { allowFailure: true });
    }
  }
}

// Shared types and helpers of the real-client drivers (docker, ctr, skopeo).
import { gunzipSync } from 'node:zlib';
import { digestOf } from '../../src/domain/digest.ts';
import type { RandomImage } from './images.ts';
import { CommandError, type RunOptions, type RunResult, describeResult, run } from './run.ts';

/** Bound on each client command (a hung push is a failure mode of its own); small images take seconds. */
export const DEFAULT_CLIENT_TIMEOUT_MS = 120_000;

/**
 * How the client reaches the registry: TLS with a CA to trust, or plain HTTP. `plainHttp` with a
 * CA (ctr only) starts over plain HTTP yet trusts the CA should the server redirect to https.
 */
export type ClientTls = { readonly caFile: string; readonly plainHttp?: boolean } | 'plain';

/** A registry, repository and tag as one client addresses them. */
export interface RegistryTarget {
  /** Host[:port] as the client addresses it, e.g. `localhost:5123` or `berth.test` (no scheme). */
  readonly registryHost: string;
  readonly username: string;
  readonly password: string;
  /** Repository path, e.g. `team/app`. */
  readonly repository: string;
  readonly tag: string;
  readonly tls: ClientTls;
}

/** What a successful push + pull did. */
export interface ClientRun {
  readonly client: 'docker' | 'ctr' | 'skopeo';
  /** `host/repository:tag` that was pushed and pulled. */
  readonly reference: string;
  /** Digest of the pushed manifest as the registry reported it (or as read back after the pull). */
  readonly manifestDigest: string;
  /** Every command run, in order, with its output. */
  readonly transcript: readonly RunResult[];
}

/** A client step failed; the message holds the failing command's full output and the steps before it. */
export class ClientFailure extends Error {
  readonly transcript: readonly RunResult[];
  constructor(client: string, message: string, transcript: readonly RunResult[], cause?: unknown) {
    const earlier = transcript.map((r) => `  ${r.commandLine} (${r.code === 0 ? 'ok' : `exit ${r.code}`})`).join('\n');
    super(`${client}: ${message}\nsteps so far:\n${earlier || '  (none)'}`, { cause });
    this.name = 'ClientFailure';
    this.transcript = transcript;
  }
}

/** Runs the commands of one client session, keeps a transcript, and turns failures into ClientFailure. */
export class Session {
  readonly client: ClientRun['client'];
  readonly transcript: RunResult[] = [];
  readonly #defaults: RunOptions;

  constructor(client: ClientRun['client'], defaults: RunOptions) {
    this.client = client;
    this.#defaults = defaults;
  }

  /** Runs one command; throws ClientFailure (with its full output) when it fails. */
  async run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const merged: RunOptions = { timeoutMs: DEFAULT_CLIENT_TIMEOUT_MS, ...this.#defaults, ...options, allowFailure: true };
    const result = await run(command, args, merged);
    this.transcript.push(result);
    if ((result.code !== 0 || result.timedOut) && !options.allowFailure) {
      throw this.fail(describeResult(result), new CommandError(result));
    }
    return result;
  }

  /** A ClientFailure carrying this session's transcript. */
  fail(message: string, cause?: unknown): ClientFailure {
    return new ClientFailure(this.client, message, this.transcript, cause);
  }
}

/** `host/repository:tag` of a target. */
export function referenceOf(target: RegistryTarget): string {
  return `${target.registryHost}/${target.repository}:${target.tag}`;
}

/** sha256 of the uncompressed layer (gunzipped when gzip-compressed), as `sha256:…`. */
export function diffIdOf(blob: Buffer): string {
  const tar = blob.length > 2 && blob[0] === 0x1f && blob[1] === 0x8b ? gunzipSync(blob) : blob;
  return digestOf(tar);
}

interface ManifestShape {
  config?: { digest?: string };
  layers?: { digest?: string }[];
}

/**
 * Checks a pulled manifest, its config and its layer blobs against the generated image: config
 * digest, config rootfs.diff_ids, and every layer's uncompressed digest. Returns the layer digests.
 */
export async function verifyPulledImage(
  session: Session,
  image: RandomImage,
  manifestBytes: Buffer,
  readBlob: (digest: string) => Promise<Buffer>,
): Promise<string[]> {
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as ManifestShape;
  if (manifest.config?.digest !== image.configDigest) {
    throw session.fail(`pulled manifest has config ${manifest.config?.digest}, expected ${image.configDigest}`);
  }
  const config = await readBlob(image.configDigest);
  if (digestOf(config) !== image.configDigest) throw session.fail('pulled config blob does not match its digest');
  const diffIds = (JSON.parse(config.toString('utf8')) as { rootfs?: { diff_ids?: string[] } }).rootfs?.diff_ids;
  if (JSON.stringify(diffIds) !== JSON.stringify(image.diffIds)) {
    throw session.fail(`pulled config diff_ids ${JSON.stringify(diffIds)} differ from ${JSON.stringify(image.diffIds)}`);
  }
  const layers = (manifest.layers ?? []).map((l) => l.digest ?? '');
  if (layers.length !== image.diffIds.length) {
    throw session.fail(`pulled manifest has ${layers.length} layers, expected ${image.diffIds.length}`);
  }
  for (const [index, digest] of layers.entries()) {
    const blob = await readBlob(digest);
    if (digestOf(blob) !== digest) throw session.fail(`layer ${index} blob does not match its digest ${digest}`);
    const diffId = diffIdOf(blob);
    if (diffId !== image.diffIds[index]) {
      throw session.fail(`layer ${index} uncompresses to ${diffId}, expected ${image.diffIds[index]}`);
    }
  }
  return layers;
}

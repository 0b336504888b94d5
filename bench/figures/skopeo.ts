// Figure 6: a real client (skopeo, the containers/image code of podman and buildah) pushing and
// pulling a multi-layer image. A fresh random image per round, so no layer is already known.
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRandomImage } from '../../test/support/images.ts';
import { cleanEnv, run } from '../../test/support/run.ts';
import { alternate, timed, type FigureContext } from '../measure.ts';
import type { BenchServer } from '../servers.ts';

const MB = 1e6;

interface PreparedImage {
  /** `oci:` layout with gzip layers, so the timed copy does no compressing. */
  readonly layout: string;
  /** Bytes of the blobs a push uploads (compressed layers, config, manifest). */
  readonly bytes: number;
}

async function layoutBytes(layout: string): Promise<number> {
  const dir = path.join(layout, 'blobs', 'sha256');
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(path.join(dir, name))).size;
  return total;
}

/**
 * Pushes with `skopeo copy oci:… docker://…` and pulls with `skopeo copy docker://… dir:…`; MB/s of
 * image bytes. The image is generated and gzip-compressed into an OCI layout before timing (skopeo
 * would otherwise spend the push compressing). Berth always gets credentials (it has no auth-off
 * switch, so skopeo runs its token flow); Distribution only when auth is on.
 */
export async function skopeoCopy(ctx: FigureContext): Promise<void> {
  const work = path.join(ctx.scratch, `skopeo-${ctx.storage}-${ctx.auth ? 'auth' : 'open'}`);
  await mkdir(work, { recursive: true });
  const registriesConf = path.join(work, 'registries.conf');
  await writeFile(registriesConf, '');
  const env = cleanEnv({ CONTAINERS_REGISTRIES_CONF: registriesConf, REGISTRY_AUTH_FILE: path.join(work, 'auth.json') });
  const images = new Map<number, Promise<PreparedImage>>();
  const prepare = (round: number): Promise<PreparedImage> => {
    let image = images.get(round);
    if (!image) {
      image = (async () => {
        const dir = path.join(work, `image-${round}`);
        await mkdir(dir, { recursive: true });
        const archive = await createRandomImage({ layerSizes: ctx.scale.skopeoLayers, dir });
        const layout = path.join(dir, 'oci');
        await run('skopeo', ['--insecure-policy', 'copy', `docker-archive:${archive.archivePath}`, `oci:${layout}:bench`], { env, timeoutMs: 300_000 });
        await rm(archive.archivePath, { force: true });
        return { layout, bytes: await layoutBytes(layout) };
      })();
      images.set(round, image);
    }
    return image;
  };
  const creds = (server: BenchServer, side: 'src' | 'dest') =>
    server.authMode === 'none' ? [] : [`--${side}-creds`, `${server.username}:${server.password}`];
  const reference = (server: BenchServer, round: number) => `${new URL(server.base).host}/bench/skopeo-${round}:latest`;
  const redact = ctx.servers.map((s) => s.password);

  const megabytes = ctx.scale.skopeoLayers.reduce((a, b) => a + b, 0) / (1 << 20);
  await alternate(ctx, { key: 'skopeo-push', label: `skopeo push, ${ctx.scale.skopeoLayers.length}-layer image (${megabytes} MiB)`, unit: 'MB/s', better: 'higher' }, ctx.scale.rounds, async (server, round) => {
    const image = await prepare(round);
    const args = ['--insecure-policy', 'copy', ...creds(server, 'dest'), '--dest-tls-verify=false', `oci:${image.layout}:bench`, `docker://${reference(server, round)}`];
    const { usage } = await timed(server.pid, () => run('skopeo', args, { env, redact, timeoutMs: 600_000 }));
    return { value: image.bytes / MB / usage.seconds, usage: { ...usage, clientCpu: NaN } };
  });
  await alternate(ctx, { key: 'skopeo-pull', label: `skopeo pull, same image`, unit: 'MB/s', better: 'higher' }, ctx.scale.rounds, async (server, round) => {
    const image = await prepare(round);
    const out = path.join(work, `pulled-${server.name}-${round}`);
    const args = ['--insecure-policy', 'copy', ...creds(server, 'src'), '--src-tls-verify=false', `docker://${reference(server, round)}`, `dir:${out}`];
    const { usage } = await timed(server.pid, () => run('skopeo', args, { env, redact, timeoutMs: 600_000 }));
    await rm(out, { recursive: true, force: true });
    return { value: image.bytes / MB / usage.seconds, usage: { ...usage, clientCpu: NaN } };
  });
  await rm(work, { recursive: true, force: true });
}

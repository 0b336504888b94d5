// Push and pull with the real Docker CLI and engine (the classic distribution push code).
import type { DockerEnv } from './dockerd.ts';
import { installDockerRegistryCa } from './dockerd.ts';
import type { RandomImage } from './images.ts';
import { cleanEnv } from './run.ts';
import { type ClientRun, type RegistryTarget, Session, referenceOf } from './client-common.ts';

/** Which engine to use. */
export interface DockerClientOptions {
  /** DOCKER_HOST and DOCKER_CONFIG of the engine (Dockerd.env). */
  readonly dockerEnv: DockerEnv;
  /** Bound on each docker command; default DEFAULT_CLIENT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

interface InspectShape {
  Id?: string;
  RootFS?: { Layers?: string[] };
  RepoDigests?: string[];
}

/**
 * docker login, load the archive, tag, push, remove every local copy, pull, and check that the
 * pulled image ID equals the config digest and its layers equal the diff_ids. For TLS targets the
 * CA is installed in /etc/docker/certs.d/<registryHost>/ for the duration of the call.
 */
export async function pushPullDocker(target: RegistryTarget, image: RandomImage, options: DockerClientOptions): Promise<ClientRun> {
  const { DOCKER_HOST, DOCKER_CONFIG } = options.dockerEnv;
  const session = new Session('docker', {
    env: cleanEnv({ DOCKER_HOST, DOCKER_CONFIG }),
    redact: [target.password],
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const reference = referenceOf(target);
  const ca = target.tls === 'plain' ? undefined : await installDockerRegistryCa(target.registryHost, target.tls.caFile);
  try {
    await session.run('docker', ['login', '-u', target.username, '--password-stdin', target.registryHost], {
      input: `${target.password}\n`,
    });
    await session.run('docker', ['load', '-i', image.archivePath]);
    await session.run('docker', ['tag', image.repoTag, reference]);
    const push = await session.run('docker', ['push', reference]);
    const manifestDigest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    if (!manifestDigest) throw session.fail(`no digest in docker push output:\n${push.stdout}`);
    await session.run('docker', ['rmi', image.repoTag, reference]);
    const gone = await session.run('docker', ['image', 'inspect', image.configDigest], { allowFailure: true });
    if (gone.code === 0) throw session.fail(`image ${image.configDigest} still present after docker rmi`);

    await session.run('docker', ['pull', reference]);
    const inspect = await session.run('docker', ['image', 'inspect', '--format', '{{json .}}', reference]);
    const info = JSON.parse(inspect.stdout) as InspectShape;
    if (info.Id !== image.configDigest) throw session.fail(`pulled image ID ${info.Id}, expected ${image.configDigest}`);
    if (JSON.stringify(info.RootFS?.Layers) !== JSON.stringify(image.diffIds)) {
      throw session.fail(`pulled layers ${JSON.stringify(info.RootFS?.Layers)}, expected ${JSON.stringify(image.diffIds)}`);
    }
    const repoDigest = `${target.registryHost}/${target.repository}@${manifestDigest}`;
    if (!info.RepoDigests?.includes(repoDigest)) {
      throw session.fail(`RepoDigests ${JSON.stringify(info.RepoDigests)} lack ${repoDigest}`);
    }
    await session.run('docker', ['rmi', reference]);
    return { client: 'docker', reference, manifestDigest, transcript: session.transcript };
  } finally {
    await session.run('docker', ['logout', target.registryHost], { allowFailure: true });
    await ca?.remove();
  }
}

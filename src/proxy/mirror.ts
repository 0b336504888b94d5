import { DEFAULT_PROJECT, projectOf } from '../domain/names.ts';
import type { Identity } from '../auth/identity.ts';
import type { Authorizer, Visibility } from '../auth/authorizer.ts';
import type { Metadata } from '../metadata/index.ts';

/** The upstream host Docker's `registry-mirrors` stands for: requests carry no `ns` for it. */
const DOCKER_HUB = 'docker.io';

/**
 * The transparent mirror (`proxy.mirrors`): pulls of names without a project — Docker's
 * `registry-mirrors` asks for `library/alpine`, containerd's `hosts.toml` adds `?ns=docker.io` —
 * are served by the proxy-cache project that mirrors the upstream host. Berth's own content comes
 * first: a name whose project exists (other than `library`, where Docker Hub's official images
 * live) or whose repository exists is served as it is.
 */
export class Mirrors {
  private readonly hosts: Map<string, string>;

  constructor(mirrors: Record<string, string>, private readonly meta: Metadata) {
    this.hosts = new Map(Object.entries(mirrors));
  }

  /** Whether any mirror is configured. */
  get enabled(): boolean {
    return this.hosts.size > 0;
  }

  /**
   * The repository that serves a pull of `name` sent for upstream `ns` (`docker.io` when absent):
   * `name` itself, or the mirroring project's copy of it (`hub/library/alpine`).
   */
  async resolve(name: string, ns: string | null): Promise<string> {
    const project = this.hosts.get((ns ?? DOCKER_HUB).toLowerCase());
    if (!project || (await this.isLocal(name))) return name;
    return `${project}/${name}`;
  }

  /** Every repository a pull of `name` may be served from through a mirror (for authorization). */
  async candidates(name: string): Promise<string[]> {
    if (!this.enabled || (await this.isLocal(name))) return [];
    return [...new Set(this.hosts.values())].map((project) => `${project}/${name}`);
  }

  private async isLocal(name: string): Promise<boolean> {
    const project = projectOf(name);
    if (project !== DEFAULT_PROJECT && (await this.meta.projects.find(project))) return true;
    return (await this.meta.repositories.id(name)) !== undefined;
  }
}

/**
 * An authorizer that lets a pull of a mirrored name through when the caller may pull it from a
 * mirroring project: Docker asks its token for `library/alpine`, which Berth serves from `hub`.
 * The route then checks the exact repository it serves from (`OCI manifest and blob routes`).
 */
export class MirrorAuthorizer implements Authorizer {
  constructor(private readonly inner: Authorizer, private readonly mirrors: Mirrors) {}

  async allowedActions(identity: Identity, type: string, name: string, requested: readonly string[]): Promise<string[]> {
    const allowed = await this.inner.allowedActions(identity, type, name, requested);
    if (type !== 'repository' || !requested.includes('pull') || allowed.includes('pull') || !this.mirrors.enabled) return allowed;
    for (const candidate of await this.mirrors.candidates(name)) {
      if ((await this.inner.allowedActions(identity, 'repository', candidate, ['pull'])).length > 0) return [...allowed, 'pull'];
    }
    return allowed;
  }

  visibility(identity: Identity): Promise<Visibility> {
    return this.inner.visibility(identity);
  }

  isAdmin(identity: Identity): Promise<boolean> {
    return this.inner.isAdmin(identity);
  }
}

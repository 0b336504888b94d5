import { RegistryError } from '../domain/errors.ts';
import { projectOf } from '../domain/names.ts';
import type { Metadata } from '../metadata/index.ts';
import type { ProjectRow } from '../metadata/schema.ts';
import { RegistryClient } from '../remote/client.ts';
import type { Endpoint } from '../remote/types.ts';

/** Where a repository of a proxy-cache project comes from. */
export interface Upstream {
  project: ProjectRow;
  /** The registry endpoint's name (for messages, logs and audit). */
  registry: string;
  client: RegistryClient;
  /** The repository's name at the upstream, e.g. `library/alpine` for `hub/alpine` on Docker Hub. */
  remote: string;
  /** How long a confirmed tag is served without asking the upstream again, ms. */
  freshnessMs: number;
}

/** The name at the upstream of `path` (the repository's name inside its project): Docker Hub's official images live under `library/`. */
export function remoteName(type: Endpoint['type'], path: string): string {
  return type === 'dockerhub' && !path.includes('/') ? `library/${path}` : path;
}

/** What resolving upstreams needs. */
export interface UpstreamDeps {
  meta: Metadata;
  /** The endpoint of registry `id`, its credential opened; undefined when it was deleted. */
  endpoint(id: number): Promise<Endpoint | undefined>;
  /** `proxy.freshness`, seconds: for projects without their own. */
  freshness: number;
  /** `proxy.timeout`, ms. */
  timeoutMs: number;
}

/**
 * Resolves repositories of proxy-cache projects to their upstream, keeping one client (its
 * keep-alive connections and tokens) per registry endpoint until the endpoint changes.
 */
export class Upstreams {
  private readonly clients = new Map<number, Promise<RegistryClient | undefined>>();

  constructor(private readonly deps: UpstreamDeps) {
    deps.meta.changes.subscribe('registry', () => this.drop());
  }

  /** The upstream of `repository`, or undefined when its project is not a proxy cache (or does not exist). */
  async of(repository: string): Promise<Upstream | undefined> {
    const name = projectOf(repository);
    const project = await this.deps.meta.projects.find(name);
    if (!project || project.proxy_registry_id === null) return undefined;
    // `hub` itself (a name of one segment) is a repository of `library`, never of the proxy project.
    const path = repository.slice(name.length + 1);
    const client = await this.client(project.proxy_registry_id);
    if (!client) throw new RegistryError('UNAVAILABLE', `project ${project.name} is a proxy cache whose registry endpoint was removed; an administrator must set it up again`, { project: project.name });
    return {
      project,
      registry: client.endpoint.name,
      client,
      remote: remoteName(client.endpoint.type, path),
      freshnessMs: 1000 * (project.proxy_freshness ?? this.deps.freshness),
    };
  }

  /** Refuses a push into a proxy-cache project with DENIED, naming the project and its upstream. */
  async refusePush(repository: string): Promise<void> {
    const project = await this.deps.meta.projects.find(projectOf(repository));
    if (!project || project.proxy_registry_id === null) return;
    throw new RegistryError('DENIED', `project ${project.name} is a proxy cache: it holds copies of another registry's images and cannot be pushed to; push to an ordinary project`, {
      project: project.name,
      reason: 'proxy-cache',
    });
  }

  /** Closes every client (shutdown). */
  close(): void {
    this.drop();
  }

  private drop(): void {
    for (const pending of this.clients.values()) void pending.then((client) => client?.close(), () => undefined);
    this.clients.clear();
  }

  private client(id: number): Promise<RegistryClient | undefined> {
    let pending = this.clients.get(id);
    if (!pending) {
      pending = this.deps.endpoint(id).then((endpoint) => endpoint && new RegistryClient(endpoint, { timeoutMs: this.deps.timeoutMs }));
      // A failed lookup is not kept: the next request tries again.
      pending.catch(() => this.clients.delete(id));
      this.clients.set(id, pending);
    }
    return pending;
  }
}

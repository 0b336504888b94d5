// Shapes of /api/v1/projects (src/http/api/projects.ts), shared by the project page and its tabs.

export type Permission =
  | 'project.read'
  | 'project.update'
  | 'project.delete'
  | 'member.list'
  | 'member.manage'
  | 'log.list'
  | 'repository.list'
  | 'repository.pull'
  | 'repository.push'
  | 'repository.delete'
  | 'robot.list'
  | 'robot.manage';

export interface ProjectSummary {
  name: string;
  public: boolean;
  quotaBytes: number | null;
  usageBytes: number;
  repositoryCount: number;
  createdAt: string;
  createdBy: string | null;
  /** A proxy-cache project: the registry endpoint it pulls from and its freshness in seconds. */
  proxyCache: { registry: string; freshness: number } | null;
}

/** GET /projects/{project}: with what the caller may do there. */
export interface Project extends ProjectSummary {
  permissions: Permission[];
}

/** What every tab of a project page receives. `reload` reads the project again (after an edit). */
export interface ProjectTabProps {
  project: Project;
  reload: () => void;
}

/** GET /projects `sort`: descending with a leading "-". */
export type ProjectSort = 'name' | '-name' | 'createdAt' | '-createdAt' | 'usage' | '-usage';

/** POST /projects. `proxyCache` only for system administrators. */
export interface CreateProject {
  name: string;
  public?: boolean;
  /** Bytes; null or absent: unlimited. */
  quotaBytes?: number | null;
  proxyCache?: { registry: string; freshness?: number };
}

/** PATCH /projects/{project}: only the fields given change. */
export interface UpdateProject {
  public?: boolean;
  quotaBytes?: number | null;
  proxyCache?: { freshness?: number | null };
}

/** A registry endpoint as GET /registries lists it (administrators only): what a proxy-cache project may pull from. */
export interface RegistryEndpoint {
  name: string;
  type: string;
  url: string;
  description: string | null;
}

/** Project names as the server accepts them: one repository path component. */
export const PROJECT_NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

import { lazy, type ComponentType, type LazyExoticComponent } from 'react';

/** What every page receives: the parameters of its route pattern. */
export interface PageProps {
  params: Record<string, string>;
}

export interface PageRoute {
  pattern: string;
  page: LazyExoticComponent<ComponentType<PageProps>>;
  /** Only system administrators see it (the API refuses others anyway). */
  admin?: boolean;
}

// Each page is its own chunk: the first load carries only the frame and the page shown.
const page = <K extends string>(load: () => Promise<Record<K, ComponentType<PageProps>>>, name: K) => lazy(async () => ({ default: (await load())[name] }));

/** The portal's pages, first match wins (an artifact's address before its repository's). */
export const ROUTES: PageRoute[] = [
  { pattern: '/projects', page: page(() => import('../pages/projects/ProjectsPage'), 'ProjectsPage') },
  { pattern: '/projects/:project', page: page(() => import('../pages/projects/ProjectPage'), 'ProjectPage') },
  { pattern: '/projects/:project/:tab', page: page(() => import('../pages/projects/ProjectPage'), 'ProjectPage') },
  { pattern: '/repositories/:name*/-/:reference', page: page(() => import('../pages/repositories/ArtifactPage'), 'ArtifactPage') },
  { pattern: '/repositories/:name*', page: page(() => import('../pages/repositories/RepositoryPage'), 'RepositoryPage') },
  { pattern: '/account', page: page(() => import('../pages/account/AccountPage'), 'AccountPage') },
  { pattern: '/admin/users', page: page(() => import('../pages/admin/UsersPage'), 'UsersPage'), admin: true },
  { pattern: '/admin/groups', page: page(() => import('../pages/admin/GroupsPage'), 'GroupsPage'), admin: true },
  { pattern: '/admin/groups/:id', page: page(() => import('../pages/admin/GroupsPage'), 'GroupsPage'), admin: true },
  { pattern: '/admin/registries', page: page(() => import('../pages/admin/RegistriesPage'), 'RegistriesPage'), admin: true },
  { pattern: '/admin/replication', page: page(() => import('../pages/admin/ReplicationPage'), 'ReplicationPage'), admin: true },
  { pattern: '/admin/replication/executions/:id', page: page(() => import('../pages/admin/ExecutionPage'), 'ExecutionPage'), admin: true },
  { pattern: '/admin/gc', page: page(() => import('../pages/admin/GcPage'), 'GcPage'), admin: true },
  { pattern: '/admin/jobs', page: page(() => import('../pages/admin/JobsPage'), 'JobsPage'), admin: true },
  { pattern: '/admin/settings', page: page(() => import('../pages/admin/SettingsPage'), 'SettingsPage'), admin: true },
  { pattern: '/admin/connection', page: page(() => import('../pages/admin/ConnectionPage'), 'ConnectionPage'), admin: true },
];

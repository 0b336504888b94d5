// Shapes of the API answers the frame uses. Pages declare the shapes they use beside them.

export interface WhoAmI {
  kind: 'user' | 'robot' | 'anonymous';
  name: string | null;
  isAdmin: boolean;
}

export interface AuthConfig {
  mode: 'local' | 'ldap' | 'oidc';
  oidc?: { displayName: string; loginPath: string };
}

export interface SystemInfo {
  version: string;
  externalURLs: string[];
  projectCreation: 'admins' | 'everyone';
  auditPulls: boolean;
  storage: 'filesystem' | 's3';
  database: 'sqlite' | 'postgres';
  announcement?: string | null;
}

/** The state of a background job (GC, replication, retention runs, jobs). */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

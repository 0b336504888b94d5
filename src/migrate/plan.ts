// What `berth migrate` does with each metadata table. Every table of the schema must be named here,
// copied or left out with a reason: a table added later without a decision stops the migration
// (see checkPlan) instead of being left behind silently.

/** How one table moves. */
export interface TablePlan {
  readonly table: string;
  /**
   * `copy`: every row, in pages, ids preserved; an insert that meets a row already there (a rerun)
   * skips it. `replace`: a table without a key to recognise its rows by, so a rerun would duplicate
   * them: the target's rows are deleted and all copied again in one transaction. `skip`: left out.
   */
  readonly action: 'copy' | 'replace' | 'skip';
  /** The primary key columns, in order: pages are read in this order (keyset pagination). Empty for `replace` and `skip`. */
  readonly key: readonly string[];
  /** Why a table is left out, for the summary. */
  readonly why?: string;
}

/**
 * The tables in foreign-key order: a table comes after every table it references, so each row
 * inserted finds its parents already there.
 */
export const TABLE_PLAN: readonly TablePlan[] = [
  { table: 'users', action: 'copy', key: ['id'] },
  // Before projects: a proxy-cache project names its upstream. Credentials stay sealed with the
  // same key (the signing key moves with the data, or `secrets.key` is configured on both).
  { table: 'registries', action: 'copy', key: ['id'] },
  { table: 'projects', action: 'copy', key: ['id'] },
  { table: 'repositories', action: 'copy', key: ['id'] },
  { table: 'repository_blobs', action: 'copy', key: ['repository_id', 'digest'] },
  { table: 'manifests', action: 'copy', key: ['repository_id', 'digest'] },
  { table: 'manifest_references', action: 'copy', key: ['repository_id', 'manifest_digest', 'child_digest'] },
  { table: 'tags', action: 'copy', key: ['repository_id', 'name'] },
  { table: 'project_members', action: 'copy', key: ['project_id', 'user_id'] },
  { table: 'groups', action: 'copy', key: ['id'] },
  { table: 'group_memberships', action: 'copy', key: ['user_id', 'group_id'] },
  { table: 'project_group_members', action: 'copy', key: ['project_id', 'group_id'] },
  { table: 'project_blobs', action: 'copy', key: ['project_id', 'digest'] },
  { table: 'project_usage', action: 'copy', key: ['project_id', 'shard'] },
  // What storage holds: the blobs the command copies are these rows' (see referencedBlobs).
  { table: 'blobs', action: 'copy', key: ['digest'] },
  { table: 'retention_policies', action: 'copy', key: ['project_id'] },
  { table: 'proxy_tags', action: 'copy', key: ['repository_id', 'tag'] },
  { table: 'immutability_rules', action: 'copy', key: ['id'] },
  { table: 'replication_rules', action: 'copy', key: ['id'] },
  { table: 'replication_marks', action: 'copy', key: ['id'] },
  { table: 'webhooks', action: 'copy', key: ['id'] },
  // The delivery log with what is still pending: the target's webhook consumer delivers it.
  { table: 'webhook_deliveries', action: 'copy', key: ['id'] },
  { table: 'robots', action: 'copy', key: ['id'] },
  { table: 'robot_permissions', action: 'replace', key: [] },
  { table: 'personal_tokens', action: 'copy', key: ['id'] },
  // Portal logins stay valid: they name users by id, and ids are preserved.
  { table: 'sessions', action: 'copy', key: ['id_hash'] },
  { table: 'audit_log', action: 'copy', key: ['id'] },
  // Empty on SQLite, whose key is a file: the command stores that key in the target itself.
  { table: 'signing_keys', action: 'copy', key: ['name'] },
  // Schedules as an administrator may have changed them; the outbox with its ids, so each
  // consumer's cursor still points where it stopped.
  { table: 'schedules', action: 'copy', key: ['name'] },
  { table: 'events', action: 'copy', key: ['id'] },
  { table: 'event_cursors', action: 'copy', key: ['consumer'] },
  // Run-time system settings an administrator changed (they override the configuration file).
  { table: 'settings', action: 'copy', key: ['key'] },
  {
    table: 'jobs',
    action: 'skip',
    key: [],
    why: "the old installation's background work and its history: its jobs were about its own storage; the schedules start afresh in the target",
  },
  { table: 'job_logs', action: 'skip', key: [], why: 'the logs of the jobs left out' },
  { table: 'leases', action: 'skip', key: [], why: 'short leases of fetches in progress on the old installation' },
  { table: 'auth_flows', action: 'skip', key: [], why: 'single sign-ons in progress, minutes long: they start again' },
  { table: 'job_items', action: 'skip', key: [], why: 'what the jobs left out decided, item by item (retention decisions)' },
  {
    table: 'upload_sessions',
    action: 'skip',
    key: [],
    why: 'uploads in progress keep their bytes in the old storage and cannot move; clients start those uploads again',
  },
];

/**
 * Throws when the schema's tables and the plan disagree: a table of the schema with no entry (a
 * table added to Berth without deciding how it moves) or an entry for a table the schema lacks
 * (the plan refers to something renamed or dropped). `tables` are the metadata tables of a
 * migrated database, Kysely's own bookkeeping tables excluded.
 */
export function checkPlan(tables: readonly string[]): void {
  const known = new Set(TABLE_PLAN.map((p) => p.table));
  const unplanned = tables.filter((t) => !known.has(t)).sort();
  const gone = [...known].filter((t) => !tables.includes(t)).sort();
  if (unplanned.length === 0 && gone.length === 0) return;
  const parts = [];
  if (unplanned.length > 0) parts.push(`the schema has tables this version of berth migrate does not know how to move (${unplanned.join(', ')})`);
  if (gone.length > 0) parts.push(`tables it expects are missing (${gone.join(', ')})`);
  throw new Error(`${parts.join('; ')}: nothing was copied; this is a bug in Berth, please report it`);
}

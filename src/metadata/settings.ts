// Run-time system settings: what an administrator changed without restarting, over the
// configuration file's values. Every replica serves them from memory and reads them again when the
// change feed says one changed (any replica), so a change takes effect everywhere within a
// notification's trip; a short TTL bounds staleness while the feed is not live.
import type { ChangeFeed } from './changes.ts';
import type { DB } from './dialect.ts';
import type { SettingRow } from './schema.ts';

/** The settings an administrator may change at run time, with their value types. */
export interface SettingValues {
  /** Who may create projects: system administrators only, or every signed-in user. */
  projectCreation: 'admins' | 'everyone';
  /** Whether pulls are written to the audit log. */
  auditPulls: boolean;
  /** Plain text every signed-in user is shown (never HTML); null: none. */
  announcement: string | null;
}

export type SettingKey = keyof SettingValues;

/** Every setting, in the order answers list them. */
export const SETTING_KEYS: readonly SettingKey[] = ['projectCreation', 'auditPulls', 'announcement'];

/** A value an administrator set, and by whom and when. */
export interface SettingOverride<K extends SettingKey = SettingKey> {
  value: SettingValues[K];
  updatedBy: string | null;
  /** Milliseconds since the epoch. */
  updatedAt: number;
}

/** The settings that were set at run time; a key that is absent comes from the configuration. */
export type SettingOverrides = { [K in SettingKey]?: SettingOverride<K> };

/** Changes to make: a value sets the key, null resets it to the configuration's value. */
export type SettingChanges = { [K in SettingKey]?: SettingValues[K] | null };

/** Reads a stored JSON value as the key's type; undefined for what does not fit (a newer Berth wrote it, or a hand edit). */
const PARSERS: { [K in SettingKey]: (value: unknown) => SettingValues[K] | undefined } = {
  projectCreation: (v) => (v === 'admins' || v === 'everyone' ? v : undefined),
  auditPulls: (v) => (typeof v === 'boolean' ? v : undefined),
  announcement: (v) => (typeof v === 'string' ? v : v === null ? null : undefined),
};

/** The values in effect: each override, else the configuration's value. */
export function effectiveSettings(overrides: SettingOverrides, defaults: SettingValues): SettingValues {
  return {
    projectCreation: overrides.projectCreation?.value ?? defaults.projectCreation,
    auditPulls: overrides.auditPulls?.value ?? defaults.auditPulls,
    announcement: overrides.announcement ? overrides.announcement.value : defaults.announcement,
  };
}

/**
 * The `settings` table, cached whole (a handful of rows). Reads never reject for a malformed stored
 * value (it is ignored, the configuration's value stands); database errors reject `load`,
 * `overrides` and `set` as the driver's own.
 */
export class SettingStore {
  /** How long a snapshot is served while the change feed is live (a missed notification's worst case). */
  static readonly LIVE_MS = 60_000;
  /** How long while it is not (other replicas' changes are then only seen by reading again). */
  static readonly DEAF_MS = 5_000;
  private snapshot: SettingOverrides = {};
  private at = -Infinity;
  private loading = false;
  private again = false;

  constructor(private readonly db: DB, private readonly changes: ChangeFeed) {
    changes.subscribe('settings', () => {
      this.at = -Infinity;
      this.refresh();
    });
  }

  /** Reads the overrides from the database now, and keeps them unless a change was heard meanwhile. */
  async load(): Promise<SettingOverrides> {
    const since = this.changes.version('settings');
    const started = performance.now();
    const rows = await this.db.selectFrom('settings').selectAll().execute();
    const read = parseRows(rows);
    if (this.changes.version('settings') === since) {
      this.snapshot = read;
      this.at = started;
    } else {
      // The listener of that change has scheduled another read; make sure it happens.
      this.refresh();
    }
    return read;
  }

  /** The overrides, no staler than a change feed notification's trip (read anew when unsure). */
  async overrides(): Promise<SettingOverrides> {
    return this.fresh() ? this.snapshot : this.load();
  }

  /**
   * The overrides from memory, for paths that must not wait (every pull asks about auditPulls).
   * When the snapshot is old or a change was heard, a read starts in the background and a later
   * call sees its result. Never rejects: a failed read is tried again at the next call.
   */
  cached(): SettingOverrides {
    if (!this.fresh()) this.refresh();
    return this.snapshot;
  }

  /**
   * Sets (a value) or resets (null) each key of `changes` in one transaction, then tells every
   * replica. Values are taken as given: callers validate them. Returns the overrides after the change.
   */
  async set(changes: SettingChanges, updatedBy: string | null, now = Date.now()): Promise<SettingOverrides> {
    const keys = SETTING_KEYS.filter((key) => changes[key] !== undefined);
    await this.db.transaction().execute(async (tx) => {
      for (const key of keys) {
        const value = changes[key];
        if (value === null) {
          await tx.deleteFrom('settings').where('key', '=', key).execute();
        } else {
          const row = { value: JSON.stringify(value), updated_by: updatedBy, updated_at: now };
          await tx.insertInto('settings').values({ key, ...row }).onConflict((oc) => oc.column('key').doUpdateSet(row)).execute();
        }
      }
    });
    for (const key of keys) await this.changes.publish('settings', key);
    return this.load();
  }

  private fresh(): boolean {
    return performance.now() - this.at < (this.changes.live ? SettingStore.LIVE_MS : SettingStore.DEAF_MS);
  }

  /** One background read at a time; one more after a change heard while reading. */
  private refresh(): void {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    this.again = false;
    this.load()
      .catch(() => undefined)
      .finally(() => {
        this.loading = false;
        if (this.again) this.refresh();
      });
  }
}

function parseRows(rows: SettingRow[]): SettingOverrides {
  const out: Record<string, SettingOverride> = {};
  for (const row of rows) {
    if (!(SETTING_KEYS as readonly string[]).includes(row.key)) continue;
    const key = row.key as SettingKey;
    let raw: unknown;
    try {
      raw = JSON.parse(row.value) as unknown;
    } catch {
      continue;
    }
    const value = PARSERS[key](raw);
    if (value !== undefined) out[key] = { value, updatedBy: row.updated_by, updatedAt: Number(row.updated_at) };
  }
  return out as SettingOverrides;
}

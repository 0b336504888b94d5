// Replication rules as administrators write them: what to copy (repository and tag patterns,
// artifact types), where to (the destination's repository names), when (manual, cron, events) and
// how (override, bandwidth, concurrency). Pure: validation, matching and naming, no I/O.
import { Cron } from 'croner';
import { z } from 'zod';
import { manifestKind } from '../domain/media-types.ts';
import { isRepositoryName } from '../domain/names.ts';
import { patternProblem, selects, type Selector } from '../domain/patterns.ts';
import { ENDPOINT_NAME, ENDPOINT_NAME_RULE } from '../remote/endpoints.ts';

/** A rule's name: the same alphabet as endpoint names. */
export const RULE_NAME = ENDPOINT_NAME;
export const RULE_NAME_RULE = ENDPOINT_NAME_RULE;

/** Patterns per filter list and artifact types per rule. */
export const MAX_SELECTORS = 10;
/** Scheduled runs closer together than this are refused (a run lists every source repository). */
export const MIN_SCHEDULE_INTERVAL_MS = 5 * 60_000;
/** Artifacts (and blobs within each) copied at once: the most a rule may ask for, and the default. */
export const MAX_CONCURRENCY = 32;
export const DEFAULT_CONCURRENCY = 4;

/** push: Berth → the endpoint; pull: the endpoint → Berth. */
export const DIRECTIONS = ['push', 'pull'] as const;
/** What starts executions: a person, a cron schedule, or each push here (push rules only). */
export const TRIGGERS = ['manual', 'schedule', 'event'] as const;
/** How source repository names become destination names (see `destinationName`). */
export const DESTINATION_MODES = ['keep', 'replace', 'flatten'] as const;
export type Direction = (typeof DIRECTIONS)[number];
export type Trigger = (typeof TRIGGERS)[number];

/** Why `cron` cannot schedule a replication rule, or undefined when it can. Never echoes it. */
export function scheduleProblem(cron: string): string | undefined {
  if (cron.trim() === '') return 'must not be empty';
  if (cron.length > 128) return 'must be at most 128 characters';
  if (/[\u0000-\u001f\u007f]/.test(cron)) return 'must not contain control characters';
  let job: Cron;
  try {
    job = new Cron(cron, { timezone: 'Etc/UTC', paused: true });
  } catch {
    return 'is not a cron expression (5 or 6 space-separated fields, e.g. "*/30 * * * *")';
  }
  const runs = job.nextRuns(4).map((d) => d.getTime());
  job.stop();
  if (runs.length === 0) return 'never fires';
  for (let i = 1; i < runs.length; i++) if (runs[i]! - runs[i - 1]! < MIN_SCHEDULE_INTERVAL_MS) return 'fires more often than every 5 minutes';
  return undefined;
}

const pattern = z.string().superRefine((value, ctx) => {
  const problem = patternProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `pattern ${problem}` });
});

/** A pattern that selects (or, with `exclude`, leaves out) what matches it. */
export const selectorSchema = z.strictObject({
  pattern: pattern.describe('glob: * (not /), ** (any), ? and {a,b}'),
  exclude: z.boolean().default(false).describe('select what does NOT match'),
});

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

/** What a rule copies; every list empty or absent selects everything. */
export const filtersSchema = z.strictObject({
  repositories: z.array(selectorSchema).max(MAX_SELECTORS).default([]).describe('source repository names (full names, e.g. team/app); all patterns must agree'),
  tags: z.array(selectorSchema).max(MAX_SELECTORS).default([]).describe('tags; all patterns must agree'),
  artifactTypes: z
    .array(z.string().refine((t) => t === 'image' || t === 'index' || MEDIA_TYPE.test(t), 'image, index, or a media type (a config media type or artifactType)'))
    .max(MAX_SELECTORS)
    .optional()
    .describe('only these kinds: image, index, or a config media type / artifactType; absent: every kind'),
});

/** How a source repository name becomes the destination's (Harbor's namespace semantics). */
export const destinationSchema = z
  .strictObject({
    mode: z.enum(DESTINATION_MODES).default('keep').describe('keep the name; replace its first segment with namespace; flatten: drop the first `levels` segments, then put namespace before'),
    namespace: z
      .string()
      .max(128)
      .regex(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/, 'repository path segments (lower-case letters, digits, separators), e.g. mirror or site/b')
      .optional(),
    levels: z.number().int().min(1).max(16).optional().describe('flatten: segments dropped from the front (never the last one)'),
  })
  .superRefine((d, ctx) => {
    if (d.mode === 'replace' && d.namespace === undefined) ctx.addIssue({ code: 'custom', path: ['namespace'], message: 'required with mode replace' });
    if (d.mode === 'flatten' && d.levels === undefined) ctx.addIssue({ code: 'custom', path: ['levels'], message: 'required with mode flatten' });
    if (d.mode !== 'flatten' && d.levels !== undefined) ctx.addIssue({ code: 'custom', path: ['levels'], message: 'only with mode flatten' });
    if (d.mode === 'keep' && d.namespace !== undefined) ctx.addIssue({ code: 'custom', path: ['namespace'], message: 'not with mode keep (use replace or flatten)' });
  });

export type Filters = z.output<typeof filtersSchema>;
export type Destination = z.output<typeof destinationSchema>;

/** The settings of a rule as the API takes them (the endpoint by name); `ruleSettings` checks the combinations. */
export const ruleFields = {
  name: z.string().regex(RULE_NAME, RULE_NAME_RULE),
  description: z.string().max(1024).nullable(),
  registry: z.string().regex(ENDPOINT_NAME, ENDPOINT_NAME_RULE).describe('the registry endpoint: destination of a push rule, source of a pull rule'),
  direction: z.enum(DIRECTIONS).describe('push: Berth → registry; pull: registry → Berth'),
  filters: filtersSchema,
  destination: destinationSchema,
  trigger: z.enum(TRIGGERS).describe('manual; schedule (with cron); event: each push here is replicated within seconds (push rules only)'),
  cron: z
    .string()
    .superRefine((value, ctx) => {
      const problem = scheduleProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .nullable()
    .describe('cron expression (UTC), with trigger schedule'),
  replicateDeletes: z.boolean().describe('event rules: deleting an artifact or tag here deletes it at the destination too'),
  override: z.boolean().describe('overwrite destination tags that point elsewhere (false: leave them and report them diverged)'),
  bandwidth: z.number().int().min(1024).max(1e12).nullable().describe('bytes per second across the execution; null: unlimited'),
  concurrency: z.number().int().min(1).max(MAX_CONCURRENCY).describe('artifacts copied at once (and blobs within each)'),
  enabled: z.boolean(),
};

/** A rule's settings, complete. */
export interface RuleSettings {
  name: string;
  description: string | null;
  /** The endpoint's name (the store keeps its id). */
  registry: string;
  direction: Direction;
  filters: Filters;
  destination: Destination;
  trigger: Trigger;
  cron: string | null;
  replicateDeletes: boolean;
  override: boolean;
  bandwidth: number | null;
  concurrency: number;
  enabled: boolean;
}

/** A problem of a combination of settings: the field and why. */
export interface SettingProblem {
  path: string;
  message: string;
}

/** What is wrong with the combination of `settings` (each field is valid on its own); [] when nothing. */
export function settingProblems(settings: RuleSettings): SettingProblem[] {
  const problems: SettingProblem[] = [];
  if (settings.trigger === 'schedule' && settings.cron === null) problems.push({ path: 'cron', message: 'required with trigger schedule' });
  if (settings.trigger !== 'schedule' && settings.cron !== null) problems.push({ path: 'cron', message: 'only with trigger schedule' });
  if (settings.trigger === 'event' && settings.direction !== 'push') problems.push({ path: 'trigger', message: 'event triggers are for push rules (Berth sees its own pushes only)' });
  if (settings.replicateDeletes && settings.trigger !== 'event') problems.push({ path: 'replicateDeletes', message: 'only with trigger event' });
  return problems;
}

/** Whether every selector of `list` selects `text` (an empty list selects everything). */
function allSelect(list: readonly Selector[], text: string): boolean {
  return list.every((s) => selects(s, text));
}

/** Whether the rule copies repository `name` (a source repository's full name). */
export function selectsRepository(filters: Filters, name: string): boolean {
  return allSelect(filters.repositories, name);
}

/** Whether the rule copies tag `tag`. */
export function selectsTag(filters: Filters, tag: string): boolean {
  return allSelect(filters.tags, tag);
}

/**
 * The source repositories the filters name literally — every including pattern without wildcards
 * (and all of them the same) — or undefined when they need a listing. A pull rule from a registry
 * without a catalog API (Docker Hub) works with such names.
 */
export function literalRepositories(filters: Filters): string[] | undefined {
  const including = filters.repositories.filter((s) => !s.exclude);
  if (including.length === 0) return undefined;
  const names = new Set<string>();
  for (const s of including) {
    if (/[*?{}]/.test(s.pattern)) return undefined;
    names.add(s.pattern);
  }
  if (names.size !== 1 && including.length > 1) return [];
  return [...names].filter((n) => selectsRepository(filters, n) && isRepositoryName(n));
}

/** What a manifest is, as artifact-type filters see it. */
export interface ArtifactKind {
  mediaType: string;
  /** The manifest's `artifactType`, when it has one. */
  artifactType?: string;
  /** Its config's media type (image manifests). */
  configMediaType?: string;
}

const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** The kind of the manifest `body` (of `mediaType`) for artifact-type filters; what does not parse is only its media type. */
export function artifactKindOf(body: Buffer, mediaType: string): ArtifactKind {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { artifactType?: unknown; config?: { mediaType?: unknown } };
    return {
      mediaType,
      ...(typeof parsed.artifactType === 'string' ? { artifactType: parsed.artifactType } : {}),
      ...(typeof parsed.config?.mediaType === 'string' ? { configMediaType: parsed.config.mediaType } : {}),
    };
  } catch {
    return { mediaType };
  }
}

/**
 * Whether an artifact of `kind` passes the artifact types (absent: everything does). `image`: an
 * image manifest with an image config and no artifactType; `index`: an index or manifest list;
 * any other entry: the manifest's artifactType or its config's media type.
 */
export function selectsArtifact(types: readonly string[] | undefined, kind: ArtifactKind): boolean {
  if (types === undefined || types.length === 0) return true;
  const shape = manifestKind(kind.mediaType);
  return types.some((t) => {
    if (t === 'index') return shape === 'index';
    if (t === 'image') return shape === 'image' && kind.artifactType === undefined && (kind.configMediaType === undefined || IMAGE_CONFIGS.has(kind.configMediaType));
    return kind.artifactType === t || kind.configMediaType === t;
  });
}

/** Whether the artifact types need the manifest's body to decide (more than image / index). */
export function needsBody(types: readonly string[] | undefined): boolean {
  return (types ?? []).some((t) => t !== 'index');
}

/**
 * The destination name of source repository `source`, or undefined when the mapping gives no valid
 * repository name. keep: unchanged; replace: the first segment becomes `namespace` (a one-segment
 * name gets `namespace/` before it); flatten: the first `levels` segments are dropped — never the
 * last — and `namespace/` put before, if given.
 */
export function destinationName(destination: Destination, source: string): string | undefined {
  const segments = source.split('/');
  let result: string;
  switch (destination.mode) {
    case 'keep':
      result = source;
      break;
    case 'replace':
      result = [destination.namespace!, ...(segments.length > 1 ? segments.slice(1) : segments)].join('/');
      break;
    case 'flatten': {
      const kept = segments.slice(Math.min(destination.levels ?? 1, segments.length - 1));
      result = [...(destination.namespace ? [destination.namespace] : []), ...kept].join('/');
      break;
    }
  }
  return isRepositoryName(result) ? result : undefined;
}

function selectorsText(list: readonly Selector[], what: string): string {
  if (list.length === 0) return `every ${what}`;
  return list.map((s) => `${s.exclude ? 'not ' : ''}${s.pattern}`).join(' and ');
}

/** The rule in words, e.g. `push to mirror: repositories team/**, tags v* → names kept; on each push; overwrites differing tags, 4 at once`. */
export function ruleText(rule: Omit<RuleSettings, 'name' | 'description' | 'enabled'>): string {
  const where = rule.direction === 'push' ? `push to ${rule.registry}` : `pull from ${rule.registry}`;
  const what = `${rule.filters.repositories.length ? `repositories ${selectorsText(rule.filters.repositories, 'repository')}` : 'every repository'}, ${rule.filters.tags.length ? `tags ${selectorsText(rule.filters.tags, 'tag')}` : 'every tag'}${rule.filters.artifactTypes?.length ? `, only ${rule.filters.artifactTypes.join(', ')}` : ''}`;
  const d = rule.destination;
  const names =
    d.mode === 'keep'
      ? 'names kept'
      : d.mode === 'replace'
        ? `first segment replaced by ${d.namespace}`
        : `first ${d.levels} segment${d.levels === 1 ? '' : 's'} dropped${d.namespace ? `, under ${d.namespace}` : ''}`;
  const when = rule.trigger === 'manual' ? 'manual runs' : rule.trigger === 'schedule' ? `on schedule ${rule.cron} (UTC)` : `on each push${rule.replicateDeletes ? ' and deletion' : ''}`;
  const how = [rule.override ? 'overwrites differing tags' : 'leaves differing tags alone', `${rule.concurrency} at once`, ...(rule.bandwidth ? [`at most ${bandwidthText(rule.bandwidth)}`] : [])];
  return `${where}: ${what} → ${names}; ${when}; ${how.join(', ')}`;
}

/** `10 MiB/s`, `1.5 MiB/s`, `512 KiB/s`. */
export function bandwidthText(bytesPerSecond: number): string {
  return `${bytesText(bytesPerSecond)}/s`;
}

/** `12.3 MiB`, `512 B`. */
export function bytesText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

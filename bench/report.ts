// The printed report: every figure for both registries with the ratio, the machine's limits, the
// overhead of authentication, and the issues' targets with ✓/✗ (issue 14's table and targets: report-lifecycle.ts).
import type { HashCost } from './figures/hash.ts';
import type { S3Limit } from './machine.ts';
import { format, pct, type Measurement, type StorageKind } from './measure.ts';
import type { Backend } from './options.ts';
import { lifecycleTargets } from './report-lifecycle.ts';
import { isProxyFigure, proxyTargets } from './report-proxy.ts';
import { isReplicationFigure, replicationTargets } from './report-replication.ts';
import { cpu, table } from './table.ts';

/** The machine's limits measured in the same run. */
export interface MachineLimits {
  readonly sha256MBps: number;
  readonly write: Partial<Record<StorageKind, { readonly dir: string; readonly kind: string; readonly mbps: number; readonly passes: number[] }>>;
  /** The S3 server of the PostgreSQL + S3 phases by itself (set by the first such phase). */
  s3?: S3Limit;
  /** The chunked-upload hash, OpenSSL's against the resumable one (figure 10). */
  hash?: HashCost[];
}

/** One target of the issue, evaluated. `ok` is undefined when the figure did not run. */
export interface TargetResult {
  readonly target: string;
  readonly goal: string;
  readonly measured: string;
  readonly ok: boolean | undefined;
}

/** Client CPU (fraction of its one core) from which the client may be the limit. */
const CLIENT_BUSY = 0.8;

/** A measurement; by default of the embedded backend with Berth alone (the figures of issue 5). */
function find(ms: readonly Measurement[], key: string, storage: StorageKind, auth: boolean, registry: string, backend: Backend = 'sqlite-fs', topology: 'direct' | 'nginx' = 'direct'): Measurement | undefined {
  return ms.find((m) => m.key === key && m.storage === storage && m.auth === auth && m.registry === registry && m.backend === backend && m.topology === topology);
}

/** Berth ÷ Distribution of the medians, as printed (for `lower` figures below 1 is better). */
function ratio(b: Measurement | undefined, d: Measurement | undefined): number {
  return b && d ? b.median / d.median : NaN;
}

/** The figures table, one block per phase (storage × auth), rows in the order they were measured. */
export function figuresTable(ms: readonly Measurement[]): string[] {
  const out: string[] = [];
  // Issues 15's and 16's figures have tables of their own (report-proxy.ts, report-replication.ts): their registries are other ones.
  const direct = ms.filter((m) => m.topology === 'direct' && !isProxyFigure(m) && !isReplicationFigure(m));
  const phases = [...new Set(direct.map((m) => `${m.storage}|${m.auth}|${m.backend}`))];
  for (const phase of phases) {
    const [storage, authText, backend] = phase.split('|') as [StorageKind, string, Backend];
    const auth = authText === 'true';
    const keys = [...new Set(direct.filter((m) => m.storage === storage && m.auth === auth && m.backend === backend && m.registry !== 'machine').map((m) => m.key))];
    const rows = keys.map((key) => {
      const b = find(ms, key, storage, auth, 'berth', backend);
      const d = find(ms, key, storage, auth, 'distribution', backend);
      const any = (b ?? d)!;
      const clientCell = (m: Measurement | undefined) =>
        m?.clientCpu !== undefined && Number.isFinite(m.clientCpu) ? `${pct(m.clientCpu)}${m.clientCpu >= CLIENT_BUSY ? '!' : ''}` : '';
      const client = clientCell(b);
      const clientD = clientCell(d);
      return [
        any.label,
        `${any.unit}${any.better === 'lower' ? ' ↓' : ''}`,
        b ? format(b.median) : '—',
        d ? format(d.median) : '—',
        b && d ? `${ratio(b, d).toFixed(2)}×` : '',
        cpu(b),
        cpu(d),
        [client, clientD].filter(Boolean).join(' / '),
      ];
    });
    out.push(
      '',
      `== ${storage === 'disk' ? 'disk' : 'tmpfs (RAM)'}, authentication ${auth ? 'ON (Distribution: htpasswd Basic; Berth: token flow)' : 'off (Distribution: none; Berth: anonymous pulls, Basic for pushes)'}, ${backend === 'sqlite-fs' ? 'Berth on SQLite + filesystem, Distribution on the filesystem' : 'Berth on PostgreSQL + S3, Distribution on the same S3 server (both in RAM)'} ==`,
      ...table(['figure', 'unit', 'Berth', 'Distribution', 'B/D', 'CPU Berth', 'CPU Dist', 'client CPU (B/D runs)'], rows, new Set([2, 3, 4, 5, 6])),
    );
  }
  out.push(
    '',
    'CPU: median share of one core while measuring (200% = both cores); ↓ = lower is better. Medians of the rounds.',
    `client CPU is the benchmark's own (one thread); "!" marks ≥ ${pct(CLIENT_BUSY)}, where the client may be what limits the figure.`,
  );
  return out;
}

/** Berth's and Distribution's figures with auth on relative to off (the cost of authentication). */
export function authOverhead(ms: readonly Measurement[]): string[] {
  const rows: string[][] = [];
  for (const storage of ['disk', 'tmpfs'] as const) {
    for (const key of ['push-monolithic', 'pull', 'manifest-get']) {
      const cells = (['berth', 'distribution'] as const).map((r) => {
        const on = find(ms, key, storage, true, r);
        const off = find(ms, key, storage, false, r);
        return on && off ? `${format(off.median)} → ${format(on.median)} (${((on.median / off.median - 1) * 100).toFixed(0)}%)` : '';
      });
      const label = find(ms, key, storage, true, 'berth')?.label ?? find(ms, key, storage, true, 'distribution')?.label;
      if (label && cells.some(Boolean)) rows.push([`${label}, ${storage}`, ...cells]);
    }
  }
  if (rows.length === 0) return [];
  return ['', '== authentication overhead: off → on ==', ...table(['figure', 'Berth', 'Distribution'], rows, new Set())];
}

/** The machine's limits, for reading push speeds as a fraction of them. */
export function limitsTable(limits: MachineLimits, ms: readonly Measurement[]): string[] {
  const rows: string[][] = [['SHA-256, one core (openssl speed -evp sha256, 16384-byte blocks)', `${format(limits.sha256MBps)} MB/s`]];
  for (const [storage, w] of Object.entries(limits.write)) {
    rows.push([`sequential write + fsync, ${storage} (${w.kind}, ${w.dir})`, `${format(w.mbps)} MB/s (passes: ${w.passes.map((p) => format(p)).join(', ')})`]);
  }
  for (const m of ms.filter((m) => m.registry === 'machine')) {
    // The lifecycle figures' probes describe themselves (what was deleted, how).
    if (m.note) {
      rows.push([`${m.note}${m.backend === 'sqlite-fs' ? '' : ` (${m.backend} phase)`}`, `${format(m.median)} ${m.unit}`]);
      continue;
    }
    rows.push([`same bytes written + fsync after each round of "${m.label}", ${m.storage}${m.auth ? ', auth on' : ''}${m.topology === 'nginx' ? ' (replicas phase)' : m.backend === 'sqlite-fs' ? '' : ` (${m.backend} phase)`}`, `${format(m.median)} MB/s (rounds: ${m.samples.map((p) => format(p)).join(', ')})`]);
  }
  if (limits.s3) {
    const mib = format(limits.s3.bytes / (1 << 20));
    rows.push([`S3 server alone (moto, ${limits.s3.endpoint}): one PutObject of ${mib} MiB`, `${format(limits.s3.putMBps)} MB/s`]);
    rows.push([`S3 server alone: one GetObject of ${mib} MiB`, `${format(limits.s3.getMBps)} MB/s`]);
    rows.push(['S3 server alone: PutObject of 16 KiB, 16 clients', `${format(limits.s3.smallPutsPerSecond)} objects/s (a blob push is several S3 requests)`]);
  }
  return ['', '== machine limits (same run) ==', ...table(['limit', 'value'], rows, new Set())];
}

/** Evaluates the issue's targets against the measurements (auth off, as the issue's ratios are). */
export function evaluateTargets(ms: readonly Measurement[], limits: MachineLimits): TargetResult[] {
  const results: TargetResult[] = [];
  const add = (target: string, goal: string, measured: string | undefined, ok: boolean | undefined) =>
    results.push({ target, goal, measured: measured ?? 'not run', ok: measured === undefined ? undefined : ok });
  const versus = (key: string, storage: StorageKind, min: number, name: string, lowerIsBetter = false) => {
    const b = find(ms, key, storage, false, 'berth');
    const d = find(ms, key, storage, false, 'distribution');
    const factor = b && d ? (lowerIsBetter ? d.median / b.median : b.median / d.median) : NaN;
    add(`${name}, ${storage}`, `≥ ${min.toFixed(1)} × Distribution`, b && d ? `${factor.toFixed(2)} × (${format(b.median)} vs ${format(d.median)} ${b.unit})` : undefined, factor >= min);
  };
  for (const key of ['push-monolithic', 'push-chunked']) {
    const b = find(ms, key, 'disk', false, 'berth');
    const name = key === 'push-monolithic' ? 'push MB/s monolithic' : 'push MB/s chunked';
    // The disk as it was in the same rounds (written next to each push); the phase's probe otherwise.
    const probe = find(ms, key, 'disk', false, 'machine');
    const disk = probe ? { mbps: probe.median, what: 'same bytes, same rounds' } : limits.write.disk ? { mbps: limits.write.disk.mbps, what: 'start of run' } : undefined;
    const share = b && disk ? b.median / disk.mbps : NaN;
    add(`${name}, disk`, '≥ 90 % of synced disk write', b && disk ? `${(share * 100).toFixed(0)} % (${format(b.median)} of ${format(disk.mbps)} MB/s, ${disk.what})` : undefined, share >= 0.9);
  }
  for (const key of ['push-monolithic', 'push-chunked']) versus(key, 'tmpfs', 2, key === 'push-monolithic' ? 'push MB/s monolithic' : 'push MB/s chunked');
  for (const storage of ['disk', 'tmpfs'] as const) versus('pull', storage, 1, 'pull MB/s');
  for (const storage of ['disk', 'tmpfs'] as const) {
    versus('manifest-head', storage, 2, 'manifest HEAD req/s');
    versus('manifest-get', storage, 2, 'manifest GET req/s');
  }
  versus('small-pushes', 'disk', 1, 'small blob pushes/s');
  versus('small-pushes', 'tmpfs', 2, 'small blob pushes/s');
  for (const storage of ['disk', 'tmpfs'] as const) {
    const m = find(ms, 'stream-rss', storage, false, 'berth');
    const flat = m?.note?.startsWith('flat');
    add(`Berth peak RSS while a large blob streams in, ${storage}`, '< 200 MiB, flat', m ? `${format(m.median)} MiB, ${flat ? 'flat' : 'not flat'}` : undefined, m ? m.median < 200 && flat === true : undefined);
  }
  for (const storage of ['disk', 'tmpfs'] as const) {
    const m = find(ms, 'token', storage, false, 'berth');
    add(`token issuance, ${storage}`, '≥ 2,000 / s', m ? `${format(m.median)} / s` : undefined, m ? m.median >= 2000 : undefined);
  }
  for (const storage of ['disk', 'tmpfs'] as const) {
    for (const key of ['catalog', 'tags-list']) {
      const b = find(ms, key, storage, false, 'berth');
      const d = find(ms, key, storage, false, 'distribution');
      const factor = b && d ? d.median / b.median : NaN;
      const name = (b ?? d)?.label ?? (key === 'catalog' ? '/_catalog page' : 'tags list');
      add(`${name}, ${storage}`, '≥ 10 × Distribution, < 50 ms', b && d ? `${factor.toFixed(1)} × (${format(b.median)} vs ${format(d.median)} ms)` : undefined, factor >= 10 && (b?.median ?? Infinity) < 50);
    }
  }
  for (const storage of ['disk', 'tmpfs'] as const) {
    const one = find(ms, 'project-one', storage, false, 'berth');
    const many = find(ms, 'project-many', storage, false, 'berth');
    const factor = one && many ? many.median / one.median : NaN;
    const quotas = one?.note?.startsWith('quotas on') ? ' (quotas on)' : one ? ' (quotas OFF)' : '';
    add(`pushes over 100 projects vs one${quotas}, ${storage}`, '≥ 0.9 ×', one && many ? `${factor.toFixed(2)} × (${format(many.median)} vs ${format(one.median)} images/s)` : undefined, factor >= 0.9);
  }
  // Issue 13: manifest requests stay ≥ 2 × Distribution with Berth on PostgreSQL (Distribution on
  // the same S3 server, so both pay for the object store), and three replicas behind nginx cost at
  // most 10 % against one on this two-core machine.
  const pg = ms.find((m) => m.backend === 'postgres-s3' && m.topology === 'direct');
  for (const key of ['manifest-head', 'manifest-get']) {
    const b = pg && find(ms, key, pg.storage, false, 'berth', 'postgres-s3');
    const d = pg && find(ms, key, pg.storage, false, 'distribution', 'postgres-s3');
    const factor = b && d ? b.median / d.median : NaN;
    add(`${key === 'manifest-head' ? 'manifest HEAD' : 'manifest GET'} req/s, Berth on PostgreSQL + S3${pg ? `, ${pg.storage}` : ''}`, '≥ 2.0 × Distribution on the same S3', b && d ? `${factor.toFixed(2)} × (${format(b.median)} vs ${format(d.median)} req/s)` : undefined, factor >= 2);
  }
  for (const row of replicaRatios(ms)) {
    add(`3 replicas vs 1 behind nginx: ${row.label}`, '≥ 0.90 × (cost ≤ 10 %)', `${row.ratio.toFixed(2)} × (${format(row.three)} vs ${format(row.one)} ${row.unit})`, row.ratio >= 0.9);
  }
  lifecycleTargets(ms, add);
  proxyTargets(ms, add);
  replicationTargets(ms, add);
  return results;
}

/** For each figure of the replicas phase with both sets: 3 replicas relative to 1 (above 1 is better, whatever the unit). */
function replicaRatios(ms: readonly Measurement[]): { key: string; label: string; unit: string; one: number; three: number; ratio: number }[] {
  const nginx = ms.filter((m) => m.topology === 'nginx' && m.registry === 'berth');
  return nginx.flatMap((one) => {
    const three = ms.find((m) => m.topology === 'nginx' && m.registry === 'berth-3' && m.key === one.key && m.storage === one.storage && m.auth === one.auth);
    if (!three) return [];
    const ratio = one.better === 'higher' ? three.median / one.median : one.median / three.median;
    return [{ key: one.key, label: one.label, unit: one.unit, one: one.median, three: three.median, ratio }];
  });
}

/**
 * Berth on PostgreSQL + S3 beside Berth on SQLite + filesystem, and Distribution on the same S3
 * server beside Distribution on the filesystem (same storage, authentication off): what the
 * shared backends cost each, and Berth ÷ Distribution on like backends.
 */
export function backendTable(ms: readonly Measurement[]): string[] {
  const pg = ms.find((m) => m.backend === 'postgres-s3' && m.topology === 'direct' && !m.auth);
  if (!pg) return [];
  const keys = [...new Set(ms.filter((m) => m.backend === 'postgres-s3' && m.topology === 'direct' && !m.auth && m.registry !== 'machine').map((m) => m.key))];
  const rows = keys.flatMap((key) => {
    const onPg = find(ms, key, pg.storage, false, 'berth', 'postgres-s3');
    const dS3 = find(ms, key, pg.storage, false, 'distribution', 'postgres-s3');
    const onLite = find(ms, key, pg.storage, false, 'berth', 'sqlite-fs');
    const dFs = find(ms, key, pg.storage, false, 'distribution', 'sqlite-fs');
    const any = onPg ?? dS3;
    if (!any) return [];
    const value = (m: Measurement | undefined) => (m ? format(m.median) : '—');
    const rel = (a: Measurement | undefined, b: Measurement | undefined) => (a && b ? `${(a.median / b.median).toFixed(2)}×` : '');
    return [[any.label, `${any.unit}${any.better === 'lower' ? ' ↓' : ''}`, value(onLite), value(onPg), rel(onPg, onLite), value(dFs), value(dS3), rel(dS3, dFs), rel(onLite, dFs), rel(onPg, dS3), cpu(onPg), cpu(dS3)]];
  });
  return [
    '',
    `== backends, ${pg.storage}, authentication off: Berth on SQLite + filesystem vs PostgreSQL + S3; Distribution on the filesystem vs the same S3 server (PostgreSQL on /dev/shm, moto S3 in memory) ==`,
    ...table(
      ['figure', 'unit', 'Berth SQLite+fs', 'Berth PG+S3', 'PG/SQLite', 'Dist fs', 'Dist S3', 'S3/fs', 'B/D fs', 'B/D S3', 'CPU B PG', 'CPU D S3'],
      rows,
      new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    ),
    'B/D fs: each on local files (SQLite + filesystem phase); B/D S3: like for like, both on one moto server, each in a bucket of its own; PG/SQLite and S3/fs: what the shared backends cost each registry.',
    'Blob figures on S3 go through the S3 server, whose own limit is in the machine limits below: read them as a share of it.',
  ];
}

/** 1 vs 3 replicas behind nginx (PostgreSQL + S3), with Distribution alone beside them. */
export function replicasTable(ms: readonly Measurement[]): string[] {
  const nginx = ms.filter((m) => m.topology === 'nginx');
  if (nginx.length === 0) return [];
  const keys = [...new Set(nginx.filter((m) => m.registry !== 'machine').map((m) => m.key))];
  const rows = keys.map((key) => {
    const get = (registry: string) => nginx.find((m) => m.key === key && m.registry === registry);
    const one = get('berth');
    const three = get('berth-3');
    const d = get('distribution');
    const any = (one ?? three ?? d)!;
    const ratio = (a: Measurement | undefined, b: Measurement | undefined) => (a && b ? `${(a.median / b.median).toFixed(2)}×` : '');
    return [any.label, `${any.unit}${any.better === 'lower' ? ' ↓' : ''}`, one ? format(one.median) : '—', three ? format(three.median) : '—', ratio(three, one), d ? format(d.median) : '—', ratio(one, d), ratio(three, d), cpu(one), cpu(three)];
  });
  return [
    '',
    '== replicas: Berth on PostgreSQL + S3 behind nginx round robin, 1 vs 3 replicas; Distribution alone (no proxy) on the same S3 server for reference ==',
    ...table(['figure', 'unit', '1 replica', '3 replicas', '3/1', 'Distribution', '1/D', '3/D', 'CPU 1', 'CPU 3'], rows, new Set([2, 3, 4, 5, 6, 7, 8, 9])),
    'CPU counts every replica and nginx. Two cores: three replicas cannot be faster than one; the target is what they cost.',
  ];
}

/** Figure 10: OpenSSL's SHA-256 kept in memory vs hash-wasm's restored and saved around every request. */
export function hashTable(limits: MachineLimits): string[] {
  if (!limits.hash?.length) return [];
  const rows = limits.hash.map((h) => [
    `${format(h.chunkBytes / (1 << 20))} MiB requests, ${format(h.totalBytes / (1 << 20))} MiB`,
    format(h.opensslMBps),
    format(h.resumableMBps),
    `${(h.resumableMBps / h.opensslMBps).toFixed(2)}×`,
    `+${h.extraMsPerRequest.toFixed(2)} ms`,
  ]);
  return [
    '',
    '== chunked-upload hash, one core, no I/O: OpenSSL (SQLite: kept in memory) vs resumable hash-wasm (PostgreSQL: state restored and saved around each request) ==',
    ...table(['upload in', 'OpenSSL MB/s', 'resumable MB/s', 'ratio', 'extra per request'], rows, new Set([1, 2, 3, 4])),
    `Monolithic uploads (one request) use OpenSSL on both backends. For scale: openssl speed gives ${format(limits.sha256MBps)} MB/s on one core.`,
  ];
}

export function targetsTable(results: readonly TargetResult[]): string[] {
  const ran = results.filter((r) => r.ok !== undefined);
  const rows = ran.map((r) => [r.target, r.goal, r.measured, r.ok ? '✓' : '✗']);
  const met = ran.filter((r) => r.ok).length;
  const skipped = results.length - ran.length;
  return [
    '',
    '== targets (issues 5, 13, 14, 15 and 16; authentication off) ==',
    ...table(['figure', 'target', 'measured', ''], rows, new Set()),
    `${met} of ${ran.length} met${skipped ? `; ${skipped} not evaluated (figure or phase not run)` : ''}`,
  ];
}

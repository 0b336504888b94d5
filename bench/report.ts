// The printed report: every figure for both registries with the ratio, the machine's limits, the
// overhead of authentication, and the issue's targets with ✓/✗.
import { format, pct, type Measurement, type StorageKind } from './measure.ts';

/** The machine's limits measured in the same run. */
export interface MachineLimits {
  readonly sha256MBps: number;
  readonly write: Partial<Record<StorageKind, { readonly dir: string; readonly kind: string; readonly mbps: number; readonly passes: number[] }>>;
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

/** Aligned columns; the columns in `right` (numbers) are right-aligned. */
function table(header: string[], rows: string[][], right: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function find(ms: readonly Measurement[], key: string, storage: StorageKind, auth: boolean, registry: string): Measurement | undefined {
  return ms.find((m) => m.key === key && m.storage === storage && m.auth === auth && m.registry === registry);
}

/** Berth ÷ Distribution of the medians, as printed (for `lower` figures below 1 is better). */
function ratio(b: Measurement | undefined, d: Measurement | undefined): number {
  return b && d ? b.median / d.median : NaN;
}

function cpu(m: Measurement | undefined): string {
  if (!m || m.serverCpu === undefined || !Number.isFinite(m.serverCpu)) return '';
  return pct(m.serverCpu);
}

/** The figures table, one block per phase (storage × auth), rows in the order they were measured. */
export function figuresTable(ms: readonly Measurement[]): string[] {
  const out: string[] = [];
  const phases = [...new Set(ms.map((m) => `${m.storage}|${m.auth}`))];
  for (const phase of phases) {
    const [storage, authText] = phase.split('|') as [StorageKind, string];
    const auth = authText === 'true';
    const keys = [...new Set(ms.filter((m) => m.storage === storage && m.auth === auth && m.registry !== 'machine').map((m) => m.key))];
    const rows = keys.map((key) => {
      const b = find(ms, key, storage, auth, 'berth');
      const d = find(ms, key, storage, auth, 'distribution');
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
      `== ${storage === 'disk' ? 'disk' : 'tmpfs (RAM)'}, authentication ${auth ? 'ON (Distribution: htpasswd Basic; Berth: token flow)' : 'off (Distribution: none; Berth: anonymous pulls, Basic for pushes)'} ==`,
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
    rows.push([`same bytes written + fsync after each round of "${m.label}", ${m.storage}${m.auth ? ', auth on' : ''}`, `${format(m.median)} MB/s (rounds: ${m.samples.map((p) => format(p)).join(', ')})`]);
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
  return results;
}

export function targetsTable(results: readonly TargetResult[]): string[] {
  const ran = results.filter((r) => r.ok !== undefined);
  const rows = ran.map((r) => [r.target, r.goal, r.measured, r.ok ? '✓' : '✗']);
  const met = ran.filter((r) => r.ok).length;
  const skipped = results.length - ran.length;
  return [
    '',
    '== targets (issue 5; authentication off) ==',
    ...table(['figure', 'target', 'measured', ''], rows, new Set()),
    `${met} of ${ran.length} met${skipped ? `; ${skipped} not evaluated (figure or phase not run)` : ''}`,
  ];
}

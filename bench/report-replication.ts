// The report's part for issue 16 (replication and webhooks): Berth's push replication against
// `skopeo sync` of the same images, the no-change run, event-based replication lag and webhook
// delivery; its table and targets. The figures are bench/figures/replication.ts's and webhooks.ts's.
import { format, type Measurement } from './measure.ts';
import { table } from './table.ts';

/** A replication figure (they run once, authentication off, Berth on SQLite + filesystem). */
function get(ms: readonly Measurement[], key: string, registry: string): Measurement | undefined {
  return ms.find((m) => m.key === key && m.registry === registry && m.backend === 'sqlite-fs' && m.topology === 'direct' && !m.auth);
}

/** Whether a measurement belongs to this part of the report (the main figures table leaves them out). */
export function isReplicationFigure(m: Measurement): boolean {
  return m.key.startsWith('replication-') || m.key.startsWith('webhook-');
}

/** The `p`-th percentile (0–100) of the samples, nearest rank: of 20 samples p95 is the 19th smallest. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

const cell = (m: Measurement | undefined) => (m ? `${format(m.median)} ${m.unit}` : '—');
const ratio = (a: Measurement | undefined, b: Measurement | undefined) => (a && b ? `${(a.better === 'lower' ? b.median / a.median : a.median / b.median).toFixed(2)}×` : '');
const millis = (seconds: number) => `${format(seconds * 1000)} ms`;
const lagCell = (m: Measurement | undefined) => (m ? `p50 ${millis(percentile(m.samples, 50))}, p95 ${millis(percentile(m.samples, 95))}, max ${millis(Math.max(...m.samples))}` : '—');

/** Issue 16's targets, each handed to `add` (evaluateTargets' recorder: undefined `measured` means not run). */
export function replicationTargets(ms: readonly Measurement[], add: (target: string, goal: string, measured: string | undefined, ok: boolean | undefined) => void): void {
  const berth = get(ms, 'replication-sync', 'berth');
  const skopeo = get(ms, 'replication-sync', 'skopeo');
  const paired = get(ms, 'replication-sync-ratio', 'berth');
  const factor = paired ? paired.median : berth && skopeo ? berth.median / skopeo.median : NaN;
  add(
    `replicating ${berth?.label.replace(/^replicating /, '') ?? 'the image set into a fresh Distribution'}: Berth push replication vs skopeo sync`,
    '≥ 2.0 × skopeo sync',
    berth && skopeo ? `${factor.toFixed(2)}×${paired ? ' paired by round' : ''} (medians ${format(berth.median)} vs ${format(skopeo.median)} MB/s)` : undefined,
    factor >= 2,
  );
  const share = get(ms, 'replication-nochange-share', 'berth');
  add('second replication run with nothing changed, share of the first run\'s time (median of rounds)', '< 5 %', share ? `${format(share.median)} % (slowest round ${format(Math.max(...share.samples))} %)` : undefined, share ? share.median < 5 : undefined);
  const event = get(ms, 'replication-event-lag', 'berth');
  add('event-based replication lag, push acknowledged → manifest at the destination', 'p95 < 2 s', event ? lagCell(event) : undefined, event ? percentile(event.samples, 95) < 2 : undefined);
  const lag = get(ms, 'webhook-lag', 'berth');
  add('webhook delivery lag, push acknowledged → delivery received', 'p95 < 1 s', lag ? lagCell(lag) : undefined, lag ? percentile(lag.samples, 95) < 1 : undefined);
  const lost = get(ms, 'webhook-burst-lost', 'berth');
  const burst = get(ms, 'webhook-burst', 'berth');
  add(`webhook burst${burst ? ` (${burst.label.replace(/^webhook burst: /, '').replace(/,.*$/, '')})` : ''}, one Berth: events lost`, '0', lost ? `${lost.median} lost${burst ? `, ${format(burst.median)} events/s` : ''}` : undefined, lost ? lost.median === 0 : undefined);
  const killLost = get(ms, 'webhook-kill-lost', 'berth');
  const killBurst = get(ms, 'webhook-kill-burst', 'berth');
  add(`webhook burst${killBurst ? ` (${killBurst.label.replace(/^.*: /, '').replace(/,.*$/, '')})` : ''} across a replica kill (2 replicas, PostgreSQL + S3): acknowledged pushes never delivered`, '0', killLost ? `${killLost.median} lost${killBurst ? `, ${format(killBurst.median)} events/s` : ''}` : undefined, killLost ? killLost.median === 0 : undefined);
}

/** Issue 16: the table of the replication and webhook figures. */
export function replicationTable(ms: readonly Measurement[]): string[] {
  const rows: string[][] = [];
  const berth = get(ms, 'replication-sync', 'berth');
  const skopeo = get(ms, 'replication-sync', 'skopeo');
  const direct = get(ms, 'replication-sync-direct', 'distribution');
  const disk = get(ms, 'replication-sync', 'machine');
  if (berth || skopeo) rows.push([(berth ?? skopeo)!.label, cell(berth), `skopeo sync: ${cell(skopeo)}`, ratio(berth, skopeo)]);
  const paired = get(ms, 'replication-sync-ratio', 'berth');
  if (paired) rows.push(["… ratio paired by round (median; each round's)", '', paired.samples.map((v) => v.toFixed(2)).join(', '), `${paired.median.toFixed(2)}×`]);
  const cpuB = get(ms, 'replication-sync-cpu', 'berth');
  const cpuS = get(ms, 'replication-sync-cpu', 'skopeo');
  if (cpuB || cpuS) rows.push([`… ${(cpuB ?? cpuS)!.label} (lower is better)`, cell(cpuB), `skopeo sync: ${cell(cpuS)}`, ratio(cpuB, cpuS)]);
  if (direct) rows.push(["… against the bench's client pushing the set from memory into a fresh Distribution (the destination's limit)", cell(berth), `client push: ${cell(direct)}`, ratio(berth, direct)]);
  if (berth && disk) rows.push(['… against the storage writing the same bytes + fsync', cell(berth), `storage: ${cell(disk)}`, ratio(berth, disk)]);
  const againB = get(ms, 'replication-nochange', 'berth');
  const againS = get(ms, 'replication-nochange', 'skopeo');
  const share = get(ms, 'replication-nochange-share', 'berth');
  if (againB || againS) rows.push([`second run, nothing changed (lower is better)${share ? `: Berth at ${format(share.median)} % of its first run` : ''}`, cell(againB), `skopeo sync: ${cell(againS)}`, ratio(againB, againS)]);
  const event = get(ms, 'replication-event-lag', 'berth');
  if (event) rows.push([event.label, lagCell(event), event.note ?? '', '']);
  const lag = get(ms, 'webhook-lag', 'berth');
  if (lag) rows.push([lag.label, lagCell(lag), lag.note ?? '', '']);
  const burst = get(ms, 'webhook-burst', 'berth');
  const pushes = get(ms, 'webhook-burst-push', 'berth');
  if (burst) rows.push([burst.label, cell(burst), pushes ? `tag pushes meanwhile: ${cell(pushes)}` : '', pushes ? ratio(burst, pushes) : '']);
  const killBurst = get(ms, 'webhook-kill-burst', 'berth');
  const killLost = get(ms, 'webhook-kill-lost', 'berth');
  if (killBurst) rows.push([killBurst.label, cell(killBurst), killLost ? `lost: ${killLost.median}` : '', '']);
  if (rows.length === 0) return [];
  const out = ['', '== replication and webhooks (issue 16): Berth push replication vs skopeo sync from the same Berth, each into a fresh Distribution; SQLite + filesystem, authentication off ==', ...table(['figure', 'Berth', 'against', 'ratio'], rows, new Set([1, 3]))];
  for (const m of [paired, share, burst, killBurst]) if (m?.note) out.push(`  ${m.key} (${m.registry}): ${m.note}`);
  out.push(
    "Ratios: above 1 favours Berth (for times, the other ÷ Berth). Throughput is the set's bytes (each blob once, manifests) over the time from starting the copy to its end: for Berth from the execution's POST to seeing it succeed (polled every 20 ms), for skopeo the sync of every repository, one invocation each.",
    'Lags are absolute (the targets are): read them against the event outbox poll interval (events.pollInterval, default 200 ms), the floor when no replica wakes its consumer, and the polling of the destination (20 ms).',
    'Across a replica kill: two replicas on PostgreSQL + S3 behind nginx; the replica holding the webhooks consumer lease gets SIGKILL part-way through the burst; the other takes the consumer over when the lease (events.lease) runs out, and delivery jobs the dead one held when theirs (jobs.lease) does. Duplicates are allowed (at least once), losses not.',
  );
  return out;
}

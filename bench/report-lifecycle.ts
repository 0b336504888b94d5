// The report's part for issue 14 (storage lifecycle): its table, one block per backend, and its
// targets. The figures are bench/figures/lifecycle.ts's.
import { format, pct, type Measurement } from './measure.ts';
import type { Backend } from './options.ts';
import { cpu, table } from './table.ts';

/** A lifecycle figure of one backend (they run once per backend, authentication off). */
function lifecycle(ms: readonly Measurement[], key: string, backend: Backend, registry = 'berth'): Measurement | undefined {
  return ms.find((m) => m.key === key && m.backend === backend && m.registry === registry && m.topology === 'direct' && !m.auth);
}

const BACKEND_NAMES: Record<Backend, string> = { 'sqlite-fs': 'SQLite + filesystem', 'postgres-s3': 'PostgreSQL + S3' };

/** A count in a label such as `… over 1,000,000 references`: the figure's size, for goals stated per size. */
function sizeIn(label: string): number {
  const m = /([\d,]+) (references|artifacts)/.exec(label);
  return m ? Number(m[1]!.replace(/,/g, '')) : NaN;
}

/**
 * Issue 14's targets, each handed to `add` (evaluateTargets' recorder: undefined `measured` means
 * not run). Sizes the goals name (1,000,000 references, 100,000 artifacts) are judged pro rata
 * when a quick run measured fewer: the measured string says which.
 */
export function lifecycleTargets(ms: readonly Measurement[], add: (target: string, goal: string, measured: string | undefined, ok: boolean | undefined) => void): void {
  const sweepFs = lifecycle(ms, 'gc-sweep', 'sqlite-fs');
  const unlink = lifecycle(ms, 'gc-sweep', 'sqlite-fs', 'machine');
  add(`GC blobs deleted per minute, filesystem${sweepFs ? `, ${sweepFs.storage}` : ''}`, '≥ 100,000 / min', sweepFs ? `${format(sweepFs.median)} / min${unlink ? ` (${pct(sweepFs.median / unlink.median)} of the filesystem's own unlink rate)` : ''}` : undefined, sweepFs ? sweepFs.median >= 100_000 : undefined);
  const sweepS3 = lifecycle(ms, 'gc-sweep', 'postgres-s3');
  const raw = lifecycle(ms, 'gc-sweep', 'postgres-s3', 'machine');
  const single = lifecycle(ms, 'gc-sweep-single', 'postgres-s3', 'machine');
  const share = sweepS3 && raw ? sweepS3.median / raw.median : NaN;
  const singleShare = sweepS3 && single ? `; ${pct(sweepS3.median / single.median)} of ${format(single.median)} with one call in flight` : '';
  add("GC blobs deleted per minute, S3 (raw: the driver's parallelism)", "≥ 80 % of the same server's raw DeleteObjects rate", sweepS3 && raw ? `${(share * 100).toFixed(0)} % (${format(sweepS3.median)} vs ${format(raw.median)} keys/min${singleShare})` : undefined, share >= 0.8);
  for (const backend of ['sqlite-fs', 'postgres-s3'] as const) {
    const db = backend === 'sqlite-fs' ? 'SQLite' : 'PostgreSQL';
    const mark = lifecycle(ms, 'gc-mark', backend);
    const refs = mark ? sizeIn(mark.label) : NaN;
    const perMillion = mark ? mark.median * (1_000_000 / refs) : NaN;
    const scaled = refs === 1_000_000 ? '' : ` for ${format(refs)}: ${format(perMillion)} s pro rata`;
    add(`GC mark time for 1,000,000 blob references, ${db}`, '< 20 s', mark ? `${format(mark.median)} s${scaled}` : undefined, perMillion < 20);
  }
  for (const backend of ['sqlite-fs', 'postgres-s3'] as const) {
    const without = lifecycle(ms, 'gc-push-without', backend);
    const withGc = lifecycle(ms, 'gc-push-with', backend);
    // Paired by round (both windows of a round side by side): the rate drifts over a run, the ratio of neighbours less.
    const paired = lifecycle(ms, 'gc-push-ratio', backend);
    const factor = paired ? paired.median : without && withGc ? withGc.median / without.median : NaN;
    // A push answered with a server error (not the protocol's retryable refusals) fails the target whatever the rate.
    const clean = !withGc?.note?.includes('FAILED');
    add(`push throughput while GC runs vs without, ${BACKEND_NAMES[backend]}`, '≥ 0.9 ×, no failed request', without && withGc ? `${factor.toFixed(2)} × paired by round (medians ${format(withGc.median)} vs ${format(without.median)} images/s)${clean ? '' : '; requests FAILED (see the note)'}` : undefined, factor >= 0.9 && clean);
  }
  for (const backend of ['sqlite-fs', 'postgres-s3'] as const) {
    const evaluated = lifecycle(ms, 'retention-eval', backend);
    const count = evaluated ? sizeIn(evaluated.label) : NaN;
    const perHundredThousand = evaluated ? evaluated.median * (100_000 / count) : NaN;
    const scaled = count === 100_000 ? '' : ` for ${format(count)}: ${format(perHundredThousand)} s pro rata`;
    add(`retention dry run over 100,000 artifacts, ${BACKEND_NAMES[backend]}`, '< 10 s', evaluated ? `${format(evaluated.median)} s${scaled}` : undefined, perHundredThousand < 10);
    const without = lifecycle(ms, 'retention-push-without', backend);
    const during = lifecycle(ms, 'retention-push-during', backend);
    const paired = lifecycle(ms, 'retention-push-ratio', backend);
    const factor = paired ? paired.median : without && during ? during.median / without.median : NaN;
    const clean = !during?.note?.includes('FAILED');
    add(`pushes into another project during retention vs without, ${BACKEND_NAMES[backend]}`, '≥ 0.9 × (database never the bottleneck), no failed push', without && during ? `${factor.toFixed(2)} × paired by round (medians ${format(during.median)} vs ${format(without.median)} images/s)${clean ? '' : '; pushes FAILED (see the note)'}` : undefined, factor >= 0.9 && clean);
  }
}

/**
 * Issue 14: storage lifecycle, one block per backend — each figure with what it is read against
 * (Distribution's offline collector, the storage's own delete rate, the same pushes without GC or
 * retention) and the ratio.
 */
export function lifecycleTable(ms: readonly Measurement[]): string[] {
  const out: string[] = [];
  for (const backend of ['sqlite-fs', 'postgres-s3'] as const) {
    const get = (key: string, registry = 'berth') => lifecycle(ms, key, backend, registry);
    const rows: string[][] = [];
    const cell = (m: Measurement | undefined) => (m ? `${format(m.median)} ${m.unit}` : '—');
    const ratio = (a: Measurement | undefined, b: Measurement | undefined, invert = false) => (a && b ? `${(invert ? b.median / a.median : a.median / b.median).toFixed(2)}×` : '');
    const sweep = get('gc-sweep');
    const dist = get('gc-sweep', 'distribution');
    const limit = get('gc-sweep', 'machine');
    if (sweep || dist) rows.push([sweep?.label ?? dist!.label, cell(sweep), `Distribution, offline: ${cell(dist)}`, ratio(sweep, dist), cpu(sweep)]);
    if (sweep && limit) rows.push(['… against the storage deleting alone', cell(sweep), `${backend === 'sqlite-fs' ? 'unlink' : 'DeleteObjects'}: ${cell(limit)}`, ratio(sweep, limit), '']);
    const single = get('gc-sweep-single', 'machine');
    if (sweep && single) rows.push(['… against it one DeleteObjects at a time', cell(sweep), `DeleteObjects: ${cell(single)}`, ratio(sweep, single), '']);
    const populate = get('gc-populate');
    const populateD = get('gc-populate', 'distribution');
    if (populate) rows.push([populate.label, cell(populate), populateD ? `Distribution: ${cell(populateD)}` : '', ratio(populate, populateD), cpu(populate)]);
    const mark = get('gc-mark');
    if (mark) rows.push([mark.label, cell(mark), 'goal < 20 s per 1,000,000', '', cpu(mark)]);
    const without = get('gc-push-without');
    const withGc = get('gc-push-with');
    const pairedGc = get('gc-push-ratio');
    if (without || withGc) rows.push([`${without?.label ?? ''}: with GC vs without${pairedGc ? ' (ratio paired by round)' : ''}`, cell(withGc), `without: ${cell(without)}`, pairedGc ? `${pairedGc.median.toFixed(2)}×` : ratio(withGc, without), cpu(withGc)]);
    const evaluated = get('retention-eval');
    const loaded = get('retention-eval-loaded');
    if (evaluated) rows.push([evaluated.label, cell(evaluated), loaded ? `with pushes: ${cell(loaded)}` : '', '', cpu(evaluated)]);
    const alone = get('retention-push-without');
    const during = get('retention-push-during');
    const pairedRetention = get('retention-push-ratio');
    if (alone || during) rows.push([`${alone?.label ?? ''}: during retention dry runs vs without${pairedRetention ? ' (ratio paired by round)' : ''}`, cell(during), `without: ${cell(alone)}`, pairedRetention ? `${pairedRetention.median.toFixed(2)}×` : ratio(during, alone), cpu(during)]);
    if (rows.length === 0) continue;
    const storage = (sweep ?? mark ?? evaluated ?? without)?.storage;
    out.push('', `== storage lifecycle (issue 14), Berth on ${BACKEND_NAMES[backend]}${storage ? `, ${storage}` : ''}, authentication off ==`, ...table(['figure', 'Berth', 'against', 'ratio', 'CPU Berth'], rows, new Set([1, 3, 4])));
    const notes = [sweep, dist, mark, withGc, evaluated, during].filter((m): m is Measurement => Boolean(m?.note)).map((m) => `  ${m.key}${m.registry === 'berth' ? '' : ` (${m.registry})`}: ${m.note}`);
    out.push(...notes);
  }
  if (out.length > 0) {
    out.push(
      "Distribution's collector is offline: the registry must be stopped (or read-only) while `docker-registry garbage-collect` runs; Berth's runs as a job while pushes go on.",
      "Durations are the job's own (its start to its end, from the API); rates are single runs of the population shown. No Distribution figure exists for mark, push-during-GC or retention (it has neither online GC nor retention).",
    );
  }
  return out;
}


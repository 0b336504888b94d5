// The report's part for issue 15 (proxy cache): Berth's proxy-cache projects against Distribution's
// proxy mode in front of the same upstream, its table and targets. The figures are bench/figures/proxy.ts's.
import { format, type Measurement } from './measure.ts';
import { cpu, table } from './table.ts';

/** A proxy figure (they run once, authentication off, Berth on SQLite + filesystem). */
function get(ms: readonly Measurement[], key: string, registry: string): Measurement | undefined {
  return ms.find((m) => m.key === key && m.registry === registry && m.backend === 'sqlite-fs' && m.topology === 'direct' && !m.auth);
}

/** Whether a measurement belongs to this part of the report (the main figures table leaves them out). */
export function isProxyFigure(m: Measurement): boolean {
  return m.key.startsWith('proxy-');
}

const cell = (m: Measurement | undefined) => (m ? `${format(m.median)} ${m.unit}` : '—');
/** a ÷ b for `higher` figures; b ÷ a for `lower` ones, so above 1 always favours a. */
const factor = (a: Measurement | undefined, b: Measurement | undefined) => (a && b ? (a.better === 'lower' ? b.median / a.median : a.median / b.median) : NaN);
const ratio = (a: Measurement | undefined, b: Measurement | undefined) => (a && b ? `${factor(a, b).toFixed(2)}×` : '');
const highest = (m: Measurement | undefined) => (m ? Math.max(...m.samples) : NaN);
/** MB per CPU-second of the serving process: throughput ÷ its median CPU share (NaN when not read). */
const mbPerCpu = (m: Measurement | undefined) => (m?.serverCpu ? m.median / m.serverCpu : NaN);
const perCpu = (m: Measurement | undefined) => (Number.isFinite(mbPerCpu(m)) ? `${format(mbPerCpu(m))} MB/CPU-s` : '—');
const efficiency = (a: Measurement | undefined, b: Measurement | undefined) => {
  const f = mbPerCpu(a) / mbPerCpu(b);
  return Number.isFinite(f) ? `${f.toFixed(2)}×` : '';
};

/** Issue 15's targets, each handed to `add` (evaluateTargets' recorder: undefined `measured` means not run). */
export function proxyTargets(ms: readonly Measurement[], add: (target: string, goal: string, measured: string | undefined, ok: boolean | undefined) => void): void {
  const cached = get(ms, 'proxy-cached-pull', 'berth');
  const distProxy = get(ms, 'proxy-cached-pull', 'distribution');
  const direct = get(ms, 'proxy-direct-pull', 'berth');
  // The ratio paired by round when there is one (the machine drifts between rounds), else the medians'.
  const versus = (pairedKey: string, other: Measurement | undefined, min: number, goal: string, name: string) => {
    const paired = get(ms, pairedKey, 'berth');
    const f = paired ? paired.median : factor(cached, other);
    const medians = cached && other ? `medians ${format(cached.median)} vs ${format(other.median)} MB/s` : '';
    add(name, goal, cached && other ? `${f.toFixed(2)}×${paired ? ' paired by round' : ''} (${medians}; medians' ratio ${ratio(cached, other)})` : undefined, f >= min);
  };
  versus('proxy-cached-ratio-distribution', distProxy, 1.3, '≥ 1.3 × Distribution proxy', 'cached pull of a multi-layer image through the proxy cache');
  versus('proxy-cached-ratio-direct', direct, 0.95, '≥ 0.95 ×', 'cached pull through the proxy cache vs the image pushed into Berth');
  const first = get(ms, 'proxy-first-pull', 'berth');
  const straight = get(ms, 'proxy-first-pull-upstream', 'distribution');
  const pairedFirst = get(ms, 'proxy-first-ratio-upstream', 'berth');
  const firstFactor = pairedFirst ? pairedFirst.median : factor(first, straight);
  add(`first pull of one large layer through the proxy cache${first ? ` (${first.label.replace(/^.* of an? /, '')})` : ''}`, '≥ 0.9 × pulling it straight from the upstream', first && straight ? `${firstFactor.toFixed(2)}×${pairedFirst ? ' paired by round' : ''} (medians ${format(first.median)} vs ${format(straight.median)} MB/s)` : undefined, firstFactor >= 0.9);
  const ttfb = get(ms, 'proxy-first-pull-ttfb', 'berth');
  add('time to the first byte of that layer through the proxy cache (slowest round)', '< 1 s', ttfb ? `${format(highest(ttfb) * 1000)} ms` : undefined, highest(ttfb) < 1);
  const fresh = get(ms, 'proxy-upstream-fresh', 'berth');
  add('upstream requests per cached tag pull inside the freshness window (most in one pull)', '0', fresh ? `${highest(fresh)} (${fresh.note ?? ''})` : undefined, highest(fresh) === 0);
  const stale = get(ms, 'proxy-upstream-stale', 'berth');
  const onlyHeads = stale?.note ? !/\b(GET|POST|PUT|PATCH|DELETE) /.test(stale.note.replace(/^.*?at the upstream: /, '')) : false;
  add('upstream requests per cached tag pull past the freshness window (most in one pull)', '≤ 1, a HEAD', stale ? `${highest(stale)} (${stale.note ?? ''})` : undefined, highest(stale) <= 1 && onlyHeads);
}

/** Issue 15: the proxy cache against Distribution's proxy mode and against the registries themselves. */
export function proxyTable(ms: readonly Measurement[]): string[] {
  const rows: string[][] = [];
  const cached = get(ms, 'proxy-cached-pull', 'berth');
  const distProxy = get(ms, 'proxy-cached-pull', 'distribution');
  const direct = get(ms, 'proxy-direct-pull', 'berth');
  const upstream = get(ms, 'proxy-direct-pull', 'distribution');
  if (cached || distProxy) rows.push([cached?.label ?? distProxy!.label, cell(cached), `Distribution proxy: ${cell(distProxy)}`, ratio(cached, distProxy), cpu(cached), cpu(distProxy)]);
  const pairedD = get(ms, 'proxy-cached-ratio-distribution', 'berth');
  if (pairedD) rows.push(['… ratio paired by round (median; each round\'s)', '', pairedD.samples.map((v) => v.toFixed(2)).join(', '), `${pairedD.median.toFixed(2)}×`, '', '']);
  if (cached && distProxy) rows.push(['… MB served per CPU-second of the proxy (the client shares the two cores)', perCpu(cached), `Distribution proxy: ${perCpu(distProxy)}`, efficiency(cached, distProxy), '', '']);
  if (cached && direct) rows.push(['… against the same image pushed into Berth', cell(cached), `Berth direct: ${cell(direct)}`, ratio(cached, direct), cpu(cached), cpu(direct)]);
  const pairedB = get(ms, 'proxy-cached-ratio-direct', 'berth');
  if (pairedB) rows.push(['… ratio paired by round (median; each round\'s)', '', pairedB.samples.map((v) => v.toFixed(2)).join(', '), `${pairedB.median.toFixed(2)}×`, '', '']);
  if (direct && upstream) rows.push(['… reference: the image pulled from Berth vs from the upstream Distribution, no proxy', cell(direct), `Distribution: ${cell(upstream)}`, ratio(direct, upstream), cpu(direct), cpu(upstream)]);
  const first = get(ms, 'proxy-first-pull', 'berth');
  const firstD = get(ms, 'proxy-first-pull', 'distribution');
  const straight = get(ms, 'proxy-first-pull-upstream', 'distribution');
  const disk = get(ms, 'proxy-first-pull', 'machine');
  if (first || straight) rows.push([(first ?? straight)!.label, cell(first), `straight from the upstream: ${cell(straight)}`, ratio(first, straight), cpu(first), cpu(straight)]);
  if (first && firstD) rows.push(['… against Distribution proxy', cell(first), `Distribution proxy: ${cell(firstD)}`, ratio(first, firstD), cpu(first), cpu(firstD)]);
  if (first && firstD) rows.push(['… MB per CPU-second of the proxy', perCpu(first), `Distribution proxy: ${perCpu(firstD)}`, efficiency(first, firstD), '', '']);
  if (firstD && straight) rows.push(['… Distribution proxy, for reference', cell(firstD), `straight from the upstream: ${cell(straight)}`, ratio(firstD, straight), cpu(firstD), cpu(straight)]);
  if (first && disk) rows.push(['… against the storage writing the same bytes + fsync', cell(first), `storage: ${cell(disk)}`, ratio(first, disk), '', '']);
  for (const key of ['proxy-first-pull-ttfb', 'proxy-first-pull-upstream-ttfb']) {
    const b = get(ms, 'proxy-first-pull-ttfb', 'berth');
    const d = get(ms, key, 'distribution');
    if (!b && !d) continue;
    const ms1000 = (m: Measurement | undefined) => (m ? `${format(m.median * 1000)} ms (slowest ${format(highest(m) * 1000)})` : '—');
    rows.push([`${(b ?? d)!.label} (lower is better)`, ms1000(b), `${key.includes('upstream') ? 'straight from the upstream' : 'Distribution proxy'}: ${ms1000(d)}`, ratio(b, d), '', '']);
  }
  for (const key of ['proxy-upstream-fresh', 'proxy-upstream-stale']) {
    const b = get(ms, key, 'berth');
    const d = get(ms, key, 'distribution');
    if (!b && !d) continue;
    const counts = (m: Measurement | undefined) => (m ? `${m.samples.join(', ')}` : '—');
    rows.push([(b ?? d)!.label, counts(b), `Distribution proxy: ${counts(d)}`, '', '', '']);
  }
  if (rows.length === 0) return [];
  const out = ['', '== proxy cache (issue 15): Berth proxy-cache project vs Distribution proxy mode, same upstream Distribution; SQLite + filesystem, authentication off ==', ...table(['figure', 'Berth', 'against', 'ratio', 'CPU Berth', 'CPU other'], rows, new Set([1, 3, 4, 5]))];
  for (const key of ['proxy-upstream-fresh', 'proxy-upstream-stale']) {
    for (const registry of ['berth', 'distribution']) {
      const m = get(ms, key, registry);
      if (m?.note) out.push(`  ${key} (${registry}): ${m.note}`);
    }
  }
  out.push(
    'Ratios: above 1 favours Berth (for times, the other ÷ Berth). CPU of the process serving the pull (the proxy, not its upstream). Upstream request counts: one per pull, each pull the manifest by tag and every blob.',
    'First pulls: each round a new layer is pushed to the upstream, then each of the three serves it for the first time (the upstream from its page cache); the proxies store it while it streams.',
  );
  return out;
}

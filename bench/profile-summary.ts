// Summarises V8 CPU profiles written by `npm run bench -- --profile` (Berth runs with --cpu-prof):
// self time per function, and time per source area (Berth's own modules vs libraries vs Node
// internals vs garbage collection), so a bottleneck can be named without opening DevTools.
//
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top N]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame lives, coarse enough to read at a glance. */
function area(url: string, name: string): string {
  if (name === '(garbage collector)') return 'garbage collection';
  if (name === '(idle)' || name === '(program)' || name === '(root)') return name;
  if (!url) return 'native / V8';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const src = url.indexOf('/src/');
  if (src >= 0) return `berth:${path.dirname(url.slice(src + 5))}`;
  return url;
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string' } }, allowPositionals: true });
  const top = Number(values.top ?? 25);
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const idle = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
    const busy = total - idle;
    const fns = new Map<string, number>();
    const areas = new Map<string, number>();
    for (const [id, t] of self) {
      const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
      if (functionName === '(idle)') continue;
      const short = url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/');
      const key = `${functionName || '(anonymous)'}  ${short}${url ? `:${lineNumber + 1}` : ''}`;
      fns.set(key, (fns.get(key) ?? 0) + t);
      const a = area(url, functionName);
      areas.set(a, (areas.get(a) ?? 0) + t);
    }
    const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
    const share = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)} %`;
    console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy on the main thread`);
    console.log('\nby area (self time):');
    for (const [a, t] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, 15)) console.log(`${ms(t)} ${share(t)}  ${a}`);
    console.log(`\ntop ${top} functions (self time):`);
    for (const [k, t] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${ms(t)} ${share(t)}  ${k}`);
  }
}

main();

// Preloaded into Berth by `npm run bench -- --profile` (NODE_OPTIONS=--import, since Node refuses
// --cpu-prof there): samples the main thread with the inspector's profiler from start to exit and
// writes a .cpuprofile into $BERTH_BENCH_PROFILE_DIR. Read it with bench/profile-summary.ts.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.BERTH_BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  // A same-thread inspector session answers synchronously, so this works in an 'exit' handler
  // (Berth exits with process.exit after its graceful shutdown).
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `berth-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}

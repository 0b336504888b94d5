// The wrapper watch of `berth serve` (src/cli/serve.ts), with a fake process table and fake time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { followParent, PARENT_CHECK_MS, parentChain, parentOf, startedByNpm } from '../../src/cli/serve.ts';

test('started by npm: npm start, npm run, npm exec / npx set these; nothing else does', () => {
  assert.equal(startedByNpm({ npm_lifecycle_event: 'start' }), true);
  assert.equal(startedByNpm({ npm_command: 'exec' }), true);
  assert.equal(startedByNpm({ PATH: '/usr/bin' }), false);
  assert.equal(startedByNpm({ npm_lifecycle_event: '' }), false);
});

test('followParent calls back once, when a process of the chain gets another parent', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const parents = new Map([
    [100, 50],
    [50, 10],
  ]);
  const seen: unknown[] = [];
  followParent(
    [
      { pid: 100, parent: 50 },
      { pid: 50, parent: 10 },
    ],
    (info) => seen.push(info),
    (pid) => parents.get(pid),
  );
  t.mock.timers.tick(PARENT_CHECK_MS * 3);
  assert.deepEqual(seen, [], 'nothing changed');
  parents.set(50, 1); // the shell's parent (npm) died: the shell was re-parented to init
  t.mock.timers.tick(PARENT_CHECK_MS);
  assert.deepEqual(seen, [{ watchedPid: 50, parentPid: 10, newParentPid: 1 }]);
  parents.delete(50);
  t.mock.timers.tick(PARENT_CHECK_MS * 3);
  assert.equal(seen.length, 1, 'once');
});

test('followParent: a vanished process counts as gone; the returned function stops the watch', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const seen: unknown[] = [];
  const stop = followParent([{ pid: 7, parent: 3 }], (info) => seen.push(info), () => undefined);
  t.mock.timers.tick(PARENT_CHECK_MS);
  assert.deepEqual(seen, [{ watchedPid: 7, parentPid: 3, newParentPid: null }]);
  const seen2: unknown[] = [];
  const stop2 = followParent([{ pid: 7, parent: 3 }], (info) => seen2.push(info), () => undefined);
  stop2();
  t.mock.timers.tick(PARENT_CHECK_MS * 2);
  assert.deepEqual(seen2, []);
  stop();
});

test('this process: its own link first, read from process.ppid', () => {
  const chain = parentChain();
  assert.deepEqual(chain[0], { pid: process.pid, parent: process.ppid });
  assert.equal(parentOf(process.pid), process.ppid);
  for (const link of chain.slice(1)) assert.equal(parentOf(link.pid), link.parent);
});

// The job half of the scale-out end-to-end test: a verify-blobs job, claimed by one replica of a
// ReplicaSet, loses that replica to SIGKILL and is finished by another once its lease lapses.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplicaSet } from './replicas.ts';
import { apiThroughProxy } from './scale-out-checks.ts';

interface JobView {
  id: number;
  state: string;
  attempts: number;
  leaseOwner: string | null;
  progress: { total?: number; checked?: number; mismatches?: number; missing?: number } | null;
  log: { level: string; message: string }[];
}

/** Bytes a second the job may read: slow enough that it is still running when its replica dies. */
const RATE = 8 * 1024 * 1024;

/** The replica (index) whose process wrote lease owner `owner` (`<host>-<pid>-<hex>#<claim>`). */
function replicaOf(set: ReplicaSet, owner: string): number {
  const pid = Number(/-(\d+)-[0-9a-f]+#\d+$/.exec(owner)?.[1]);
  const index = set.replicas.findIndex((r) => r.process?.pid === pid);
  assert.ok(index >= 0, `lease owner ${owner} names no running replica (pids ${set.replicas.map((r) => r.process?.pid).join(', ')})`);
  return index;
}

async function job(set: ReplicaSet, id: number): Promise<JobView> {
  const res = await apiThroughProxy<JobView>(set, 'GET', `/jobs/${id}`);
  assert.equal(res.status, 200, `GET /jobs/${id}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * Starts verify-blobs through nginx, waits until a replica has claimed it and verified at least
 * one blob, SIGKILLs that replica, and checks that another replica takes the job over after the
 * lease (`jobs.lease`, short in the test) and finishes it: succeeded, attempt 2, another owner,
 * resumed after the first attempt's cursor, no mismatch. Restarts the killed replica at the end.
 */
export async function jobTakeover(set: ReplicaSet): Promise<void> {
  const started = await apiThroughProxy<{ id: number }>(set, 'POST', '/jobs', { kind: 'verify-blobs', payload: { bytesPerSecond: RATE } });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const id = started.body.id;

  let first: JobView | undefined;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
    const now = await job(set, id);
    assert.ok(now.state === 'queued' || now.state === 'running', `job ${id} ended before its replica was killed: ${JSON.stringify(now)}`);
    if (now.state === 'running' && now.leaseOwner && (now.progress?.checked ?? 0) >= 1) {
      first = now;
      break;
    }
  }
  assert.ok(first?.leaseOwner, `job ${id} was not claimed and under way within 60 s`);
  const victim = replicaOf(set, first.leaseOwner);
  await set.kill(victim);
  console.log(`# job ${id}: claimed by replica ${victim} (${first.leaseOwner}), killed after ${first.progress?.checked} of ${first.progress?.total} blobs`);

  const owners = new Set<string>();
  let last: JobView | undefined;
  try {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(300)) {
      last = await job(set, id);
      if (last.leaseOwner) owners.add(last.leaseOwner);
      if (last.state !== 'running' && last.state !== 'queued') break;
    }
    assert.ok(last, 'the job was looked at');
    assert.equal(last.state, 'succeeded', `job ${id} after the takeover: ${JSON.stringify({ ...last, log: last.log.slice(-5) })}`);
    assert.equal(last.attempts, 2, 'one attempt on the killed replica, one on the replica that took over');
    const takers = [...owners].filter((o) => o !== first.leaseOwner);
    assert.ok(takers.length >= 1, `another replica held the lease after the kill (owners seen: ${[...owners].join(', ')})`);
    for (const owner of takers) assert.notEqual(replicaOf(set, owner), victim, 'the job went to a live replica');
    assert.equal(last.progress?.mismatches, 0, 'every blob matches its digest: nothing partial was committed');
    assert.equal(last.progress?.missing, 0, 'nothing the metadata references is missing from the bucket');
    const messages = last.log.map((l) => l.message);
    assert.ok(messages.some((m) => /^attempt 2: resuming after sha256:/.test(m)), `the second attempt resumed from the first one's cursor: ${messages.join(' | ')}`);
    assert.match(messages.at(-1)!, /every one matches its digest/);
  } finally {
    await set.restart(victim);
  }
}

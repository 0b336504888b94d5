// The untagged phase (with deleteUntagged): manifests no tag reaches, repository by repository.
// A manifest goes when it has no tag, no manifest of its repository lists it, it was pushed before
// the cutoff, and it is not a referrer of a manifest that stays; the children of an index go with
// it when nothing else holds them (never those of a tagged index, which stays).
import type { PhaseFigures } from './figures.ts';
import { retryingConflicts } from '../../metadata/conflicts.ts';
import { blobsListedBy, repositoryCount, repositoryGraph, repositoryIds, type ManifestNode, type RepositoryGraph } from './queries.ts';
import type { GcRun } from './run.ts';

/** Repositories read per query. */
const PAGE = 100;

/** What a dry run's untagged phase decided, for its sweep to count what those deletions would free. */
export interface UntaggedPlan {
  /** `<repository id> <digest>` of every manifest a real run would delete. */
  gone: Set<string>;
  /** Digests those manifests are, or list as blobs: what may become garbage with them. */
  released: Set<string>;
}

/** Which manifests of a repository are untagged garbage (`doomed`), and how many untagged ones are too young. */
export function decide(graph: RepositoryGraph, cutoff: number): { doomed: Set<string>; young: number } {
  const present = new Set(graph.manifests.map((m) => m.digest));
  const doomed = new Set<string>();
  // A fixed point: a referrer goes once its subject does, a child once every index listing it does.
  for (let changed = true; changed; ) {
    changed = false;
    for (const m of graph.manifests) {
      if (doomed.has(m.digest) || graph.tagged.has(m.digest)) continue;
      const parents = graph.parents.get(m.digest);
      // A child goes exactly as ManifestStore's removal takes children: with the last index that listed it.
      const goes = parents ? parents.every((p) => doomed.has(p)) : m.createdAt < cutoff && (m.subject === null || !present.has(m.subject) || doomed.has(m.subject));
      if (goes) {
        doomed.add(m.digest);
        changed = true;
      }
    }
  }
  const young = graph.manifests.filter((m) => !graph.tagged.has(m.digest) && !graph.parents.has(m.digest) && m.createdAt >= cutoff).length;
  return { doomed, young };
}

/**
 * Deletes the untagged manifests of a repository (real run): the top-level ones one by one with
 * `ManifestStore.deleteUntagged`, which re-checks each under its row's lock (a push that tagged or
 * listed it meanwhile keeps it), subjects before their referrers; children go with their index.
 */
async function deleteDoomed(run: GcRun, phase: PhaseFigures, repository: { id: number; name: string }, graph: RepositoryGraph, doomed: Set<string>): Promise<void> {
  const sizes = new Map(graph.manifests.map((m) => [m.digest, m.size]));
  const gone = new Set<string>();
  let pending: ManifestNode[] = graph.manifests.filter((m) => doomed.has(m.digest) && !graph.parents.has(m.digest));
  while (pending.length > 0) {
    const waiting: ManifestNode[] = [];
    let tried = 0;
    for (const m of pending) {
      run.check();
      if (m.subject !== null && doomed.has(m.subject) && !gone.has(m.subject)) {
        waiting.push(m);
        continue;
      }
      tried++;
      const removal = await retryingConflicts(() => run.deps.meta.manifests.deleteUntagged(repository.id, m.digest, run.cutoff, 'gc'), run.signal);
      if (!removal) continue;
      for (const r of removal.manifests) gone.add(r.digest);
      run.count(phase, removal.manifests.map((r) => ({ name: `${repository.name}@${r.digest}`, size: sizes.get(r.digest) ?? 0 })));
      run.figures.manifestsDeleted += removal.manifests.length;
      if (removal.projectId !== null) await run.released([[removal.projectId, removal.releasedBytes]]);
    }
    // Referrers whose subject a push kept meanwhile stay.
    if (tried === 0) break;
    pending = waiting;
  }
}

/** Runs the untagged phase; a dry run returns what it decided (for its sweep), a real run deletes. */
export async function untaggedPhase(run: GcRun): Promise<UntaggedPlan | undefined> {
  const phase = await run.begin('untagged');
  const { db } = run.deps.meta;
  const plan: UntaggedPlan | undefined = run.dryRun ? { gone: new Set(), released: new Set() } : undefined;
  const total = Math.max(1, await repositoryCount(db));
  let after = Number(phase.cursor ?? 0);
  let visited = 0;
  for (;;) {
    run.check();
    const repositories = await repositoryIds(db, after, PAGE);
    if (repositories.length === 0) break;
    for (const repository of repositories) {
      run.check();
      const graph = await repositoryGraph(db, repository.id);
      phase.examined += graph.manifests.length;
      const { doomed, young } = decide(graph, run.cutoff);
      run.figures.withinGrace.manifests += young;
      if (doomed.size === 0) continue;
      if (plan) {
        const digests = [...doomed];
        for (const digest of digests) plan.gone.add(`${repository.id} ${digest}`);
        for (const digest of [...digests, ...(await blobsListedBy(db, repository.id, digests))]) plan.released.add(digest);
        const doomedNodes = graph.manifests.filter((m) => doomed.has(m.digest));
        run.count(phase, doomedNodes.map((m) => ({ name: `${repository.name}@${m.digest}`, size: m.size })));
        run.figures.manifestsDeleted += doomed.size;
      } else {
        await deleteDoomed(run, phase, repository, graph, doomed);
      }
    }
    after = repositories.at(-1)!.id;
    visited += repositories.length;
    phase.cursor = String(after);
    await run.report(Math.min(1, visited / total));
  }
  const verb = run.dryRun ? 'would delete' : 'deleted';
  await run.info(`untagged: examined ${phase.examined} manifests, ${verb} ${phase.deleted} untagged (${phase.bytes} bytes of manifests)`);
  if (phase.sample.length > 0) await run.info(`untagged: ${verb}, e.g. ${phase.sample.join(' ')}`);
  if (run.figures.withinGrace.manifests > 0) await run.info(`untagged: ${run.figures.withinGrace.manifests} untagged manifests were pushed less than the grace period ago and stay`);
  await run.end('untagged');
  return plan;
}

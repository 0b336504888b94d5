// THE HOOK for "pushes into one project vs over 100 projects (Berth, with quotas on)".
//
// Berth has projects with storage quotas (src/registry/quota.ts) but no management API for them
// yet, so this hook creates the projects with a quota directly in Berth's metadata store — as
// `berth user` does for users, safe while the server runs. When the management API (or a
// `berth project` command) lands, switch enableProjectQuotas() to it; the figure needs nothing else.
import { openMetadata } from '../../src/metadata/index.ts';
import type { BenchServer } from '../servers.ts';

/** Large enough never to refuse a benchmark push, so every push pays for the check and the charge only. */
const QUOTA_BYTES = 2 ** 40;

/** What the hook did, printed beside the figure and kept in the JSON results. */
export interface QuotaSetup {
  /** True once the namespaces are projects with a quota Berth enforces on every push. */
  readonly enabled: boolean;
  readonly note: string;
}

/**
 * Creates each of `namespaces` as a project with a 1 TiB quota (or sets that quota on an existing
 * one) before the pushes start; called once per phase with every namespace the figure pushes into.
 */
export async function enableProjectQuotas(berth: BenchServer, namespaces: readonly string[]): Promise<QuotaSetup> {
  const meta = await openMetadata(berth.dataDir);
  try {
    for (const name of namespaces) {
      if (!(await meta.projects.create(name, { quotaBytes: QUOTA_BYTES, createdBy: 'admin' }))) {
        await meta.projects.update(name, { quotaBytes: QUOTA_BYTES });
      }
    }
  } finally {
    await meta.close();
  }
  return { enabled: true, note: `quotas on: ${namespaces.length} projects with a 1 TiB quota each (set in the metadata store: no project API yet; hook in bench/figures/quotas.ts)` };
}

/** Bytes Berth has charged to the projects' quotas: proof that the pushes were counted. */
export async function chargedBytes(berth: BenchServer, namespaces: readonly string[]): Promise<number> {
  const meta = await openMetadata(berth.dataDir);
  try {
    let total = 0;
    for (const name of namespaces) {
      const project = await meta.projects.find(name);
      if (project) total += await meta.projects.usage(project.id);
    }
    return total;
  } finally {
    await meta.close();
  }
}

import { projectOf } from '../domain/names.ts';
import type { Metadata } from '../metadata/index.ts';
import { QuotaExceededError } from '../metadata/projects.ts';

/**
 * Project storage quotas. Every blob and manifest is counted once per project (deduplicated);
 * a push that would exceed the quota is refused with DENIED before anything becomes visible.
 * Checks are not serialised across concurrent pushes (that would make every push into a project
 * queue on one row), so concurrent pushes may overshoot the quota by what they upload together.
 * Usage is what the project's artifacts reference (plus blobs uploaded for a push not finished):
 * deleting an artifact or a repository lowers it at once, in the deletion's own transaction
 * (see `ProjectStore.release`), whether or not the bytes have left storage yet.
 */
export class QuotaService {
  constructor(private readonly meta: Metadata) {}

  /** Refuses with DENIED if storing `digest` (`size` bytes) in `repository` would exceed its project's quota. */
  async check(repository: string, digest: string, size: number): Promise<void> {
    const project = await this.meta.projects.find(projectOf(repository));
    if (!project || project.quota_bytes === null) return;
    if (await this.meta.projects.counts(project.id, digest)) return;
    const used = await this.meta.projects.usage(project.id);
    const quota = Number(project.quota_bytes);
    if (used + size > quota) throw new QuotaExceededError(project.name, quota, used, size, digest);
  }

  /** Counts `digest` in the project of `repository` (a no-op when already counted there). */
  async charge(repository: string, digest: string, size: number): Promise<void> {
    await this.meta.projects.charge(await this.projectOf(repository), digest, size);
  }

  /** The id of the project `repository` is charged to, creating the project if needed. */
  async projectOf(repository: string): Promise<number> {
    return this.meta.projects.ensure(projectOf(repository), undefined);
  }
}

export { QuotaExceededError };

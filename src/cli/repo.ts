import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, withCommon } from './api-client.ts';
import { parseReference, repositoryPath } from './artifact.ts';
import { formatTime, printJSON } from './format.ts';
import { printTable } from './output.ts';

/** A repository as the API describes it. */
export interface Repository {
  name: string;
  project: string;
  /** Artifacts as `berth artifact list` counts them (platform images under an index not separately). */
  artifactCount: number;
  createdAt: string | null;
}

/** `berth repo list|delete`, over /api/v1/repositories. */
export function repoCommand(program: Command): void {
  const repo = program.command('repo').description('repositories: list them, delete one with all its artifacts and tags');

  withCommon(repo.command('list').description('repositories of a project, or of every project you can see'))
    .option('--project <project>', 'only this project')
    .option('-q, --query <text>', 'only repositories whose name contains this')
    .action(async (opts: CommonFlags & { project?: string; query?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const { items } = await client.list<Repository>('/repositories', { project: opts.project, q: opts.query });
      if (opts.json) return printJSON(items);
      printTable(['NAME', 'PROJECT', 'ARTIFACTS', 'CREATED'], items.map((r) => [r.name, r.project, String(r.artifactCount), formatTime(r.createdAt)]));
    });

  withCommon(repo.command('delete <repository>').description('delete a repository with all its artifacts and tags'))
    .action(async (text: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const { repository } = parseReference(text, new URL(client.baseUrl).host);
      await client.delete(repositoryPath(repository));
      if (opts.json) return printJSON({ name: repository, deleted: true });
      console.log(`deleted repository "${repository}" with its artifacts and tags`);
    });
}

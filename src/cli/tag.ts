import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { type Artifact, parseReference, repositoryPath } from './artifact.ts';
import { printJSON } from './format.ts';
import { CliError } from './output.ts';

/** `berth tag delete`, over /api/v1/repositories/{name}/tags. */
export function tagCommand(program: Command): void {
  const tag = program.command('tag').description('tags of a repository (berth artifact list shows them)');

  withCommon(tag.command('delete <reference>').description('remove a tag, REPOSITORY:TAG; the artifact stays, reachable by digest'))
    .action(async (text: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const ref = parseReference(text, new URL(client.baseUrl).host);
      if (ref.tag === undefined) throw new CliError(`"${text}": name the tag as REPOSITORY:TAG${ref.digest ? ' (to delete an artifact by digest: berth artifact delete)' : ''}`);
      // Read first, so the answer can say where the artifact is still reachable.
      const artifact = await client.get<Artifact>(`${repositoryPath(ref.repository)}/artifacts/${segment(ref.tag)}`);
      await client.delete(`${repositoryPath(ref.repository)}/tags/${segment(ref.tag)}`);
      if (opts.json) return printJSON({ repository: ref.repository, tag: ref.tag, digest: artifact.digest, deleted: true });
      console.log(`deleted tag ${ref.repository}:${ref.tag}; the artifact stays: ${ref.repository}@${artifact.digest}`);
    });
}

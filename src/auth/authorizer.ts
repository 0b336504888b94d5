import type { Identity } from './identity.ts';

/**
 * Decides which actions an identity may take on a resource. The token service grants the
 * intersection of what is asked and what this allows; `/v2` handlers consult it to tell
 * "not allowed" (403 DENIED) from "token lacks the scope" (401 with a challenge).
 */
export interface Authorizer {
  /** The subset of `requested` that `identity` may perform on `type`/`name`. */
  allowedActions(identity: Identity, type: string, name: string, requested: readonly string[]): Promise<string[]>;
}

/**
 * The policy until projects and roles exist: authenticated users may pull, push and delete
 * everywhere and list the catalog; anonymous callers may pull only when anonymous pull is on.
 */
export class AuthenticatedUsersAuthorizer implements Authorizer {
  constructor(private readonly anonymousPull: boolean) {}

  async allowedActions(identity: Identity, type: string, _name: string, requested: readonly string[]): Promise<string[]> {
    if (identity.kind === 'anonymous') {
      return type === 'repository' && this.anonymousPull ? requested.filter((a) => a === 'pull') : [];
    }
    if (type === 'repository') return requested.filter((a) => a === 'pull' || a === 'push' || a === 'delete' || a === '*');
    if (type === 'registry') return requested.filter((a) => a === '*');
    return [];
  }
}

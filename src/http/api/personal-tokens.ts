import { z } from 'zod';
import { TOKEN_PREFIX, hashSecret, newSecret } from '../../auth/secrets.ts';
import type { Metadata } from '../../metadata/index.ts';
import type { PersonalTokenRow } from '../../metadata/schema.ts';

/** A personal access token's name: what `berth token list` shows and `berth logout` revokes by. */
export const personalTokenName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, 'letters, digits, ".", "_", "@" and "-", starting with a letter or digit');

/** Characters of a token kept (after the prefix) to recognise it in lists. */
const SHOWN = 6;

/** A token just made: its row and the secret, which exists only in this answer. */
export interface IssuedToken {
  row: PersonalTokenRow;
  token: string;
}

/**
 * Makes a personal access token (`berth_pat_…`) for the user; only its hash is stored. Undefined
 * when the user already has a token of that name (revoked ones keep theirs): the caller answers 409.
 * Proof that the caller may do this (a fresh sign-in) is the caller's to check.
 */
export async function issuePersonalToken(meta: Metadata, userId: number, name: string, expiresAt: number | null): Promise<IssuedToken | undefined> {
  const token = newSecret(TOKEN_PREFIX);
  if (!(await meta.tokens.create(userId, name, hashSecret(token), token.slice(0, TOKEN_PREFIX.length + SHOWN), expiresAt))) return undefined;
  const row = (await meta.tokens.findByHash(hashSecret(token)))!;
  return { row, token };
}

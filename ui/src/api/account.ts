// Shapes of a person's own account: GET/PATCH /users/me (src/http/api/users.ts) and their personal
// access tokens, /users/me/tokens (src/http/api/tokens.ts).

import type { UserDetail } from './admin';

/** GET /users/me. */
export type Me = UserDetail;

/** The body of PATCH /users/me changing one's own password: the current one is required. */
export interface PasswordChange {
  password: string;
  currentPassword: string;
}

/** An item of GET /users/me/tokens (never the token itself). */
export interface PersonalToken {
  name: string;
  /** The first characters of the token, to recognise it. */
  prefix: string;
  expiresAt: string | null;
  revoked: boolean;
  lastUsedAt: string | null;
  createdAt: string;
}

/** POST /users/me/tokens: the token is in this answer only. */
export interface CreatedToken extends PersonalToken {
  token: string;
}

/** The body of POST /users/me/tokens. `expiresInDays` -1 or absent: never. */
export interface TokenRequest {
  name: string;
  expiresInDays?: number;
  currentPassword?: string;
}

/** Token names the server accepts (personal-tokens.ts). */
export const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

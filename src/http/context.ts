import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../auth/identity.ts';
import type { RequestOrigin } from './forwarded.ts';

/** How a request authenticated, for the access log. Never holds the credential itself. */
export interface RequestAuth {
  scheme: 'none' | 'basic' | 'bearer' | 'other';
  identity?: Identity;
}

/** One request as handlers see it. */
export interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  /** Request id, echoed in the `X-Request-Id` response header and every log line. */
  id: string;
  /** The raw path (not decoded, not normalised). */
  path: string;
  query: URLSearchParams;
  log: Logger;
  auth: RequestAuth;
  /** The matched route's name, for metrics and logs. */
  route: string;
  /** Whether the connection is TLS (to Berth itself). */
  secure: boolean;
  /** How the request reached Berth: peer, and the client's address, scheme and host as far as trusted. */
  origin: RequestOrigin;
  /** The error code sent, if the request failed (for the log). */
  errorCode?: string;
  /** What Berth concluded about a failed request (e.g. credentials dropped on the way), for the log. */
  diagnosis?: Diagnosis;
}

/** A named conclusion about a request, written to its access-log line (read by `berth logs explain`). */
export interface Diagnosis {
  code: string;
  message: string;
  [field: string]: unknown;
}

export type Handler = (ctx: Context, params: string[]) => Promise<void>;

/** A route: methods, a path pattern whose groups become `params`, and a handler. */
export interface Route {
  name: string;
  methods: readonly string[];
  pattern: RegExp;
  handler: Handler;
}

// A small client of Berth's management API (/api/v1) for the CLI: JSON in and out, the error
// envelope turned into one readable line, pagination followed through the Link header.
import type { Command } from 'commander';
import { VERSION } from '../version.ts';
import { findLogin, type StoredLogin } from './login-store.ts';
import { CliError } from './output.ts';

/** One page of a list, as every list endpoint answers. */
export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}

/** Query parameters; undefined values are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/** The largest page the API serves; lists are fetched in as few requests as possible. */
const MAX_PAGE_SIZE = 500;
const TIMEOUT_MS = 60_000;

/**
 * An error answer of the server, printed as `<status> <code>: <message>` (and the fields a 400
 * INVALID names, one per line), so `berth: 403 DENIED: member.manage needed…` reads like the API.
 */
export class ApiError extends CliError {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly detail: unknown,
    hint?: string,
  ) {
    super(`${status} ${code}: ${serverMessage}${fieldLines(serverMessage, detail)}${hint ? `\n${hint}` : ''}`);
  }
}

/** The fields a 400 INVALID names, one per line, unless the message already says it all. */
function fieldLines(message: string, detail: unknown): string {
  const fields = (detail as { fields?: unknown } | null)?.fields;
  if (!Array.isArray(fields)) return '';
  return fields
    .map((f: { path?: unknown; message?: unknown }) => `${Array.isArray(f.path) ? f.path.join('.') : String(f.path ?? '')}: ${String(f.message ?? '')}`)
    .filter((line) => !message.includes(line))
    .map((line) => `\n  ${line}`)
    .join('');
}

/** What to send with a request. */
export interface RequestOptions {
  query?: Query;
  body?: unknown;
}

/** Calls /api/v1 of one server with one set of credentials. */
export class ApiClient {
  /**
   * @param baseUrl the server's origin (`https://registry.example.com`)
   * @param authorization the `Authorization` header value, or undefined for anonymous calls
   * @param unauthorizedHint appended to a 401's message (e.g. "run berth login again")
   */
  constructor(
    readonly baseUrl: string,
    private readonly authorization: string | undefined,
    private readonly unauthorizedHint?: string,
  ) {}

  /** A client authenticating with Basic `username:secret` (a password, personal token or robot secret). */
  static basic(baseUrl: string, username: string, secret: string, unauthorizedHint?: string): ApiClient {
    return new ApiClient(baseUrl, `Basic ${Buffer.from(`${username}:${secret}`).toString('base64')}`, unauthorizedHint);
  }

  /** The URL of an API path (`/projects`). */
  url(path: string, query?: Query): URL {
    const url = new URL(`/api/v1${path}`, this.baseUrl);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** Sends one request; resolves to the parsed JSON body (undefined for 204), throws ApiError otherwise. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const { body } = await this.send(method, this.url(path, options.query), options.body);
    return body as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, query ? { query } : {});
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, { body: body ?? {} });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body });
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path);
  }

  /**
   * Every item of a list (or the first `limit`), following `Link: <…>; rel="next"` page by page.
   * Returns the items and the server's total.
   */
  async list<T>(path: string, query: Query = {}, limit?: number): Promise<{ items: T[]; total: number }> {
    const pageSize = Math.min(MAX_PAGE_SIZE, limit ?? MAX_PAGE_SIZE);
    let url: URL | undefined = this.url(path, { ...query, page: 1, pageSize });
    const items: T[] = [];
    let total = 0;
    for (let pages = 0; url && pages < 10_000; pages++) {
      const { body, headers } = await this.send('GET', url);
      const page = body as Page<T>;
      if (!page || !Array.isArray(page.items)) throw new CliError(`unexpected answer from ${url.pathname}: no "items" list`);
      items.push(...page.items);
      total = typeof page.total === 'number' ? page.total : items.length;
      if (page.items.length === 0 || (limit !== undefined && items.length >= limit)) break;
      const next = nextLink(headers.get('link'));
      url = next ? new URL(next, url) : undefined;
    }
    return { items: limit === undefined ? items : items.slice(0, limit), total };
  }

  private async send(method: string, url: URL, body?: unknown): Promise<{ body: unknown; headers: Headers }> {
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': `berth-cli/${VERSION}` };
    if (this.authorization) headers['Authorization'] = this.authorization;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        redirect: 'follow',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      const plain = url.protocol === 'https:' && /SSL|EPROTO|TLS/i.test(why) ? ` (if the server speaks plain HTTP, use ${this.baseUrl.replace(/^https:/, 'http:')})` : '';
      throw new CliError(`cannot reach ${this.baseUrl}: ${why}${plain}`);
    }
    const text = await res.text();
    if (res.ok) {
      if (res.status === 204 || text === '') return { body: undefined, headers: res.headers };
      try {
        return { body: JSON.parse(text), headers: res.headers };
      } catch {
        throw new CliError(`${res.status} from ${url.pathname} is not JSON: ${text.slice(0, 200)}`);
      }
    }
    throw this.errorOf(res, url, text);
  }

  private errorOf(res: Response, url: URL, text: string): CliError {
    const hint = res.status === 401 ? this.unauthorizedHint : undefined;
    let first: { code?: unknown; message?: unknown; detail?: unknown } | undefined;
    try {
      first = (JSON.parse(text) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] }).errors?.[0];
    } catch {
      // Not Berth's envelope: a proxy's page or an older server; described below.
    }
    if (first && typeof first.code === 'string') {
      return new ApiError(res.status, first.code, typeof first.message === 'string' ? first.message : '', first.detail, hint);
    }
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
    const why = res.status === 404 && url.pathname.startsWith('/api/v1') ? `${url.pathname} not found: is ${this.baseUrl} a Berth server with the management API?` : snippet || res.statusText;
    return new ApiError(res.status, res.statusText.toUpperCase().replace(/\s+/g, '_') || 'ERROR', why, undefined, hint);
  }
}

/** The target of `rel="next"` in a Link header, if any. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const match = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (match && /\brel="?next"?/i.test(match[2]!)) return match[1];
  }
  return undefined;
}

/** A path segment with `$`, `+`, `/` and the like escaped (robot names, user names). */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** The stored login (chosen by `--url`) and a client that authenticates with its token. */
export async function loggedInClient(url?: string): Promise<{ client: ApiClient; login: StoredLogin }> {
  const login = await findLogin(url);
  const hint = `the stored token of ${login.username} for ${login.url} was refused (revoked or expired?): run "berth login ${login.url}" again`;
  return { client: ApiClient.basic(login.url, login.username, login.token, hint), login };
}

/** The options every command that talks to a server has. */
export interface CommonFlags {
  url?: string;
  json?: boolean;
}

/** Adds `--url` (which stored login) and `--json` to a command. */
export function withCommon(cmd: Command): Command {
  return cmd.option('--url <url>', 'server to use when logins to several are stored').option('--json', 'print JSON instead of a table');
}

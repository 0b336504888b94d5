// The portal's one way to the server: JSON over /api/v1 with the session cookie. Cookie-authenticated
// changes must say they come from a page of this site (X-Berth-Request), which a cross-site form
// cannot; the cookie itself is HttpOnly and SameSite=Strict.

/** An error answer of the API: its envelope's first error, and the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

/** A page of a server-side paginated list, as every list endpoint answers it. */
export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}

type Query = Record<string, string | number | boolean | undefined | null>;

/** Called when an answer says the session is gone (401), so the app can show the sign-in page. */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

/** `/api/v1` + path + the defined query parameters. Path segments must be encoded by the caller (see `seg`). */
export function apiURL(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  const qs = params.toString();
  return `/api/v1${path}${qs ? `?${qs}` : ''}`;
}

/** Encodes one path segment (a repository name keeps its slashes: use `repoPath`). */
export const seg = (value: string | number): string => encodeURIComponent(String(value));
/** A repository name as a path (its slashes are path separators on the server). */
export const repoPath = (name: string): string => name.split('/').map(seg).join('/');

async function request<T>(method: string, path: string, options: { query?: Query; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', 'X-Berth-Request': '1' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(apiURL(path, options.query), {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'the server could not be reached');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const first = (data as { errors?: { code?: string; message?: string; detail?: unknown }[] } | undefined)?.errors?.[0];
    if (res.status === 401 && path !== '/auth/session') onUnauthorized?.();
    throw new ApiError(res.status, first?.code ?? `HTTP_${res.status}`, first?.message ?? `${res.status} ${res.statusText}`, first?.detail);
  }
  return data as T;
}

/** The management API. Every method rejects with ApiError on an error answer or a network failure. */
export const api = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal }),
  post: <T>(path: string, body?: unknown, query?: Query) => request<T>('POST', path, { body: body ?? {}, query }),
  put: <T>(path: string, body?: unknown) => request<T>('PUT', path, { body: body ?? {} }),
  patch: <T>(path: string, body?: unknown) => request<T>('PATCH', path, { body: body ?? {} }),
  del: <T = void>(path: string, query?: Query) => request<T>('DELETE', path, { query }),
};

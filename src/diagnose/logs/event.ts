/**
 * The one normalized shape every log format is parsed into. The explainer reasons over these
 * events only, so a rule written once works for nginx, Distribution, Harbor and Berth logs alike.
 */

/** Which hop wrote the line: the reverse proxy, the registry behind it, Harbor's core, or Berth. */
export type LogRole = 'proxy' | 'proxy-error' | 'registry' | 'harbor-core' | 'berth' | 'unknown';

/** How the request authenticated, as far as the line tells (`unknown` when it does not say). */
export type AuthSeen = 'none' | 'basic' | 'bearer' | 'other' | 'unknown';

/** Berth's own diagnosis attached to a failing request (contract B): upload-session and quota conclusions. */
export interface BerthDiagnosis {
  code: string;
  message?: string;
  session?: string;
  openedBy?: string;
  openedVia?: string;
  /** Quota refusals (`quota-exceeded`): the project, its quota, its usage and the size refused, in bytes. */
  project?: string;
  quotaBytes?: number;
  usageBytes?: number;
  sizeBytes?: number;
}

export interface LogEvent {
  /** Input name (file name or `-`) and 1-based line number: what evidence cites. */
  file: string;
  line: number;
  /** The line as read (compose/syslog prefix included), for evidence. */
  raw: string;
  role: LogRole;
  /** A short label for the timeline: compose service name, or the role. */
  source: string;
  format: 'nginx-combined' | 'nginx-timed' | 'nginx-harbor' | 'nginx-error' | 'logrus-text' | 'logrus-json' | 'harbor-core' | 'berth-json';
  /** Milliseconds since the epoch; NaN when the line had no usable time (the dispatcher then fills it, see `timeFrom`). */
  time: number;
  /**
   * Where `time` came from when the line itself carries none (Harbor's nginx logs no time):
   * `neighbour` — borrowed from the nearest timestamped line before it (after it, at the top of a
   * file); `position` — no line of the input has a time, so `time` is the line number (ms after the
   * epoch) and only orders lines by position. Absent: the line's own time.
   */
  timeFrom?: 'neighbour' | 'position';
  /** Present when the line describes one HTTP request (access-log style). */
  method?: string;
  path?: string;
  query?: string;
  status?: number;
  durationMs?: number;
  /** Host header as it reached the writer of this line. */
  host?: string;
  /** Connection scheme at the writer (Berth), when logged. */
  scheme?: string;
  /** Client address after trusted forwarding (or the only address logged). */
  client?: string;
  /** Socket peer (Berth), when logged separately. */
  peer?: string;
  userAgent?: string;
  auth: AuthSeen;
  user?: string;
  forwarded?: Record<string, string>;
  /** An absolute or relative upload Location, when some log line recorded one. */
  location?: string;
  level?: string;
  /** Free-text message (logrus msg, nginx error text, Harbor core message). */
  message?: string;
  /** Error code or text the writer attached (OCI code, `err.code`, Berth `error`). */
  error?: string;
  diagnosis?: BerthDiagnosis;
  /** Bytes the client declared/sent, when the line tells (nginx error log "too large body"). */
  bodyBytes?: number;
}

/** A request event: one with a method and a path. */
export type RequestEvent = LogEvent & { method: string; path: string };

export function isRequest(e: LogEvent): e is RequestEvent {
  return e.method !== undefined && e.path !== undefined;
}

/** What a /v2 or token request does, from its method and path alone. */
export type Step =
  | 'ping'
  | 'token'
  | 'blob-check'
  | 'blob-get'
  | 'upload-start'
  | 'upload-chunk'
  | 'upload-complete'
  | 'upload-status'
  | 'upload-cancel'
  | 'manifest-get'
  | 'manifest-put'
  | 'tags'
  | 'catalog'
  | 'other';

const REPO_RE = /^\/v2\/(.+?)\/(blobs|manifests|tags|referrers)(\/|$)/;

/**
 * Health and metrics probes (Berth's, Distribution's, Harbor's, Kubernetes' conventions): part of
 * no push or pull — a readiness 503 while a registry starts or drains is no client's failure.
 */
export function isProbePath(path: string): boolean {
  return /^\/(healthz|readyz|livez|metrics|health|debug\/health|api\/v1\/health|api\/v2\.0\/health)\/?(\?.*)?$/.test(path);
}

/** The repository a path or token scope names, if any. */
export function repositoryOf(e: LogEvent): string | undefined {
  if (e.path) {
    const m = REPO_RE.exec(e.path);
    if (m) return m[1];
  }
  const scope = scopeOf(e);
  if (scope) {
    const m = /repository:([^:]+):/.exec(scope);
    if (m) return m[1];
  }
  return undefined;
}

/** The `scope=` parameter(s) of a token request, decoded. */
export function scopeOf(e: LogEvent): string | undefined {
  if (!e.query) return undefined;
  const scopes = new URLSearchParams(e.query).getAll('scope');
  return scopes.length ? scopes.join(' ') : undefined;
}

export function isTokenPath(path: string): boolean {
  return /^\/(service\/token|v2\/token|token|auth\/token|oauth2?\/token)\/?$/.test(path);
}

/** Classifies a request into the push/pull protocol step it belongs to. */
export function stepOf(e: LogEvent): Step {
  const path = e.path ?? '';
  const method = e.method ?? '';
  if (path === '/v2/' || path === '/v2') return 'ping';
  if (isTokenPath(path)) return 'token';
  if (/\/blobs\/uploads\/?$/.test(path)) return method === 'POST' ? 'upload-start' : 'other';
  if (/\/blobs\/uploads\/[^/]+$/.test(path) || isUploadOutsideV2(path)) {
    if (method === 'PATCH') return 'upload-chunk';
    if (method === 'PUT') return 'upload-complete';
    if (method === 'DELETE') return 'upload-cancel';
    return 'upload-status';
  }
  if (/\/blobs\/sha256:/.test(path) || /\/blobs\/[a-z0-9]+:/.test(path)) return method === 'HEAD' ? 'blob-check' : 'blob-get';
  if (/\/manifests\//.test(path)) return method === 'PUT' ? 'manifest-put' : 'manifest-get';
  if (/\/tags\/list/.test(path)) return 'tags';
  if (path.startsWith('/v2/_catalog')) return 'catalog';
  return 'other';
}

/** An upload URL that a misconfigured registry placed outside /v2/ (M4). */
export function isUploadOutsideV2(path: string): boolean {
  return !path.startsWith('/v2/') && /\/uploads?\/[^/]+$/.test(path);
}

/** `containerd/1.7.24` → `containerd`; the Docker engine's long agent → `docker`. */
export function clientProduct(userAgent: string | undefined): string {
  if (!userAgent) return '?';
  const first = userAgent.split(/[\s/]/)[0] ?? '?';
  return first.toLowerCase() || '?';
}

/** Is this Host value an address only reachable inside the proxy's network (nginx's default `$proxy_host`)? */
export function isInternalHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.replace(/^\[|\](:\d+)?$/g, '').replace(/:\d+$/, '');
  if (name === 'localhost' || name === '::1') return true;
  if (/^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(name)) return true;
  return !name.includes('.') && !name.includes(':');
}

/** Does the Host value carry an explicit default port (`:443`/`:80`) that clients never send? */
export function hasDefaultPort(host: string | undefined): boolean {
  return !!host && /:(443|80)$/.test(host);
}

/**
 * Groups events into push/pull sessions. One `docker push` shows up as requests from the same
 * client program on the same repository within minutes, seen by every hop (proxy, registry), so
 * the key is repository + client product + time proximity. Requests that name no repository
 * (`GET /v2/`, token requests without scope, nginx error lines) join the nearest matching session.
 */
import { mergeByTime } from './parse.ts';
import { clientProduct, isProbePath, isRequest, repositoryOf, scopeOf, stepOf, type LogEvent } from './event.ts';

/** A session splits when its requests are further apart than this. */
const GAP_MS = 10 * 60_000;
/** How far outside a session's time span a repository-less request may still join it. */
const ATTACH_MS = 90_000;

export interface Session {
  id: number;
  repository?: string;
  kind: 'push' | 'pull' | 'login' | 'other';
  /** Client program (`containerd`, `docker`, `skopeo`…) from the user agent. */
  product: string;
  userAgent?: string;
  /** The client's address as the outermost hop logged it. */
  client?: string;
  start: number;
  end: number;
  events: LogEvent[];
}

interface Draft {
  repository?: string;
  product: string;
  events: LogEvent[];
  start: number;
  end: number;
}

function add(d: Draft, e: LogEvent): void {
  d.events.push(e);
  if (Number.isFinite(e.time)) {
    d.start = Math.min(d.start, e.time);
    d.end = Math.max(d.end, e.time);
  }
}

function lastWhere<T>(items: T[], pred: (x: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) if (pred(items[i]!)) return items[i];
  return undefined;
}

/** When the request began: logs stamp the end, and a long upload PATCH can span many minutes. */
function startOf(e: LogEvent): number {
  return e.time - (e.durationMs && e.durationMs > 0 ? e.durationMs : 0);
}

/** Gap between a session's span and an event's [start, end] span; 0 when they overlap. */
function distance(d: Draft, e: LogEvent): number {
  if (!Number.isFinite(e.time)) return 0;
  return Math.max(0, d.start - e.time, startOf(e) - d.end);
}

/** Builds the sessions from time-sorted events. Message-only lines join a session only when they name its repository. */
export function groupSessions(events: LogEvent[]): Session[] {
  const drafts: Draft[] = [];
  const later: LogEvent[] = [];
  for (const e of events) {
    if (isRequest(e) && isProbePath(e.path)) continue;
    const repo = repositoryOf(e);
    const product = clientProduct(e.userAgent);
    if (!isRequest(e) || !repo || product === '?') {
      later.push(e);
      continue;
    }
    let d = lastWhere(drafts, (x) => x.repository === repo && x.product === product);
    if (!d || distance(d, e) > GAP_MS) {
      d = { repository: repo, product, events: [], start: e.time, end: e.time };
      drafts.push(d);
    }
    add(d, e);
  }
  for (const e of later) {
    const repo = repositoryOf(e);
    const product = clientProduct(e.userAgent);
    const mentions = (d: Draft) => !!d.repository && !!e.message && e.message.includes(d.repository);
    const candidates = drafts.filter((d) => {
      if (!isRequest(e)) {
        const beside = d.events.some((x) => x.file === e.file && x.role === e.role && Math.abs(x.time - e.time) <= 2000);
        return (mentions(d) && distance(d, e) <= ATTACH_MS) || beside;
      }
      if (repo && d.repository && repo !== d.repository) return false;
      if (product !== '?' && d.product !== product) return false;
      return distance(d, e) <= (repo ? GAP_MS : ATTACH_MS);
    });
    // Logs stamped to the second tie often: then prefer the session seen in the same file (one
    // proxy's log), then through the same Host, then the newest (a token request opens a session).
    const affinity = (d: Draft) => (d.events.some((x) => x.file === e.file) ? 2 : 0) + (e.host && d.events.some((x) => x.host === e.host) ? 1 : 0);
    // A line stamped to the second can be up to a second later than its stamp says: distances
    // under that are no evidence, and compare as whole seconds.
    const coarse = e.time % 1000 === 0;
    const near = (d: Draft) => (coarse ? Math.ceil(distance(d, e) / 1000) : distance(d, e));
    candidates.sort((a, b) => near(a) - near(b) || affinity(b) - affinity(a) || b.start - a.start);
    const best = candidates[0];
    if (best) {
      add(best, e);
    } else if (isRequest(e)) {
      let d = lastWhere(drafts, (x) => !x.repository && x.product === product && distance(x, e) <= ATTACH_MS);
      if (!d) {
        d = { repository: repo, product, events: [], start: e.time, end: e.time };
        drafts.push(d);
      }
      add(d, e);
    }
  }
  const sessions = drafts.map((d) => {
    d.events = mergeByTime(d.events);
    const steps = d.events.filter(isRequest).map(stepOf);
    const pushScope = d.events.some((e) => /push/.test(scopeOf(e) ?? ''));
    const reads = steps.some((s) => s === 'manifest-get' || s === 'blob-get' || s === 'tags');
    // A pull starts from a manifest; asking whether the registry has blobs (HEAD) without reading
    // any is how a push starts — one that may never get further (containerd's token request, a
    // POST, carries its scope in the body, which no log shows).
    const kind: Session['kind'] = steps.some((s) => s.startsWith('upload') || s === 'manifest-put') || pushScope || (!reads && steps.includes('blob-check'))
      ? 'push'
      : reads
        ? 'pull'
        : steps.every((s) => s === 'ping' || s === 'token')
          ? 'login'
          : 'other';
    const outer = d.events.find((e) => e.role === 'proxy' && e.client) ?? d.events.find((e) => e.client);
    return {
      id: 0,
      repository: d.repository,
      kind,
      product: d.product,
      userAgent: d.events.find((e) => e.userAgent)?.userAgent,
      client: outer?.client,
      start: d.start,
      end: d.end,
      events: d.events,
    };
  });
  sessions.sort((a, b) => a.start - b.start);
  sessions.forEach((s, i) => (s.id = i + 1));
  return sessions;
}

import { MAX_NAME_LENGTH, isRepositoryName } from '../domain/names.ts';

/** One access entry of a token, as in the Docker token spec: `{type, name, actions}`. */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

// Docker token spec: resourcetype := /[a-z0-9]+/ [ '(' /[a-z0-9]+/ ')' ];
// hostname := hostcomponent ['.' hostcomponent]* [':' port-number].
const RESOURCE_TYPE = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/;
const HOST_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOSTNAME = new RegExp(`^${HOST_COMPONENT}(?:\\.${HOST_COMPONENT})*(?::[0-9]{1,5})?$`);

/**
 * Whether `name` may be named in a scope: a repository name as `/v2` accepts it (so `catalog` too),
 * optionally after a `hostname[:port]/` prefix as the token spec's grammar allows — recognised as a
 * host, as Distribution's reference grammar does, only if it has a `.` or `:` or is `localhost`.
 * At most {@link MAX_NAME_LENGTH} characters in all.
 */
export function isScopeResourceName(name: string): boolean {
  if (name.length > MAX_NAME_LENGTH) return false;
  if (isRepositoryName(name)) return true;
  const slash = name.indexOf('/');
  if (slash <= 0) return false;
  const host = name.slice(0, slash);
  return (/[.:]/.test(host) || host === 'localhost') && HOSTNAME.test(host) && isRepositoryName(name.slice(slash + 1));
}

/**
 * Parses a `scope` value — `repository:team/app:pull,push`, `registry:catalog:*`, or several of them
 * separated by spaces (OAuth2 form). Names may contain `:` (a host:port prefix), so the type is the
 * first field and the actions the last. Malformed entries are skipped, as the spec permits: among
 * them every entry whose type breaks the spec's grammar or whose name is not one a `/v2` request can
 * name ({@link isScopeResourceName}) — such an entry could only ever grant access to nothing, and
 * skipping it here means it is neither granted nor echoed back in a token or response.
 */
export function parseScopes(values: string[]): Access[] {
  const result: Access[] = [];
  for (const value of values) {
    for (const item of value.split(' ')) {
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      const type = item.slice(0, first);
      const name = item.slice(first + 1, last);
      const actions = item.slice(last + 1).split(',').filter(Boolean);
      if (!RESOURCE_TYPE.test(type) || !isScopeResourceName(name) || actions.length === 0) continue;
      result.push({ type, name, actions });
    }
  }
  return mergeAccess(result);
}

/** Merges entries for the same resource. */
export function mergeAccess(entries: Access[]): Access[] {
  const byKey = new Map<string, Access>();
  for (const e of entries) {
    const key = `${e.type}:${e.name}`;
    const existing = byKey.get(key);
    if (existing) existing.actions = [...new Set([...existing.actions, ...e.actions])];
    else byKey.set(key, { type: e.type, name: e.name, actions: [...new Set(e.actions)] });
  }
  return [...byKey.values()];
}

/** The scope string for one access entry, for challenges. */
export function formatScope(access: Access): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}

/** Whether a token's access list grants `action` on a resource (`*` grants every action). */
export function grants(access: readonly Access[], type: string, name: string, action: string): boolean {
  return access.some((a) => a.type === type && a.name === name && (a.actions.includes(action) || a.actions.includes('*')));
}

/** One access entry of a token, as in the Docker token spec: `{type, name, actions}`. */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Parses a `scope` value — `repository:team/app:pull,push`, `registry:catalog:*`, or several of them
 * separated by spaces (OAuth2 form). Names may contain `:` (a host:port prefix), so the type is the
 * first field and the actions the last. Malformed entries are skipped, as the spec permits.
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
      if (!name || actions.length === 0) continue;
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

import { useEffect, useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

// A small history router: the portal's pages are plain paths (/projects/team), so links can be
// shared and opened in new tabs; the server answers every such path with the portal.

const listeners = new Set<() => void>();
const notify = () => listeners.forEach((l) => l());
window.addEventListener('popstate', notify);

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
const snapshot = () => location.pathname + location.search;

/** Goes to a path of the portal without reloading. */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === snapshot()) return;
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.scrollTo(0, 0);
  notify();
}

/** The current location: path, and its query. Re-renders on navigation. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const current = useSyncExternalStore(subscribe, snapshot);
  const q = current.indexOf('?');
  return { path: q < 0 ? current : current.slice(0, q), query: new URLSearchParams(q < 0 ? '' : current.slice(q)) };
}

/** Replaces some query parameters of the current location (undefined or '' removes one). */
export function setQuery(changes: Record<string, string | number | undefined>, options: { replace?: boolean } = { replace: true }): void {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined || value === '') params.delete(key);
    else params.set(key, String(value));
  }
  const qs = params.toString();
  navigate(location.pathname + (qs ? `?${qs}` : ''), options);
}

/**
 * A route pattern: `/projects/:project`, `:name*` takes the rest of the path including slashes
 * (repository names have them). Segments are URL-decoded.
 */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const names: string[] = [];
  const source = pattern
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) {
        const rest = part.endsWith('*');
        names.push(part.slice(1, rest ? -1 : undefined));
        return rest ? '(.+?)' : '([^/]+)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  const m = new RegExp(`^${source}/?$`).exec(path);
  if (!m) return null;
  const params: Record<string, string> = {};
  try {
    names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1]!)));
  } catch {
    return null;
  }
  return params;
}

/** A link within the portal: a real `<a href>` (new tab, copy link work), navigating in place on a plain click. */
export function Link({ to, onClick, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const click = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={click} {...rest} />;
}

/** Sets the document title while a page is shown. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Berth`;
  }, [title]);
}

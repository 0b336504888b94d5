import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, setUnauthorizedHandler } from '../api/client';
import type { AuthConfig, SystemInfo, WhoAmI } from '../api/types';

export interface Session {
  /** The signed-in person, or null before signing in. */
  user: { name: string; isAdmin: boolean } | null;
  authConfig: AuthConfig;
  info: SystemInfo | null;
  /** Reads who is signed in again (after signing in). */
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

/** Knows who is signed in; renders nothing until it has asked the server once. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<Omit<Session, 'refresh' | 'signOut'> | null>(null);

  const refresh = useCallback(async () => {
    const [who, authConfig] = await Promise.all([
      api.get<WhoAmI>('/auth/whoami').catch(() => null),
      api.get<AuthConfig>('/auth/config').catch((): AuthConfig => ({ mode: 'local' })),
    ]);
    const user = who && who.kind === 'user' && who.name ? { name: who.name, isAdmin: who.isAdmin } : null;
    const info = user ? await api.get<SystemInfo>('/system/info').catch(() => null) : null;
    setState({ user, authConfig, info });
  }, []);

  const signOut = useCallback(async () => {
    await api.del('/auth/session').catch(() => undefined);
    setState((s) => (s ? { ...s, user: null, info: null } : s));
  }, []);

  useEffect(() => {
    void refresh();
    setUnauthorizedHandler(() => setState((s) => (s && s.user ? { ...s, user: null, info: null } : s)));
  }, [refresh]);

  if (!state) return null;
  return <SessionContext.Provider value={{ ...state, refresh, signOut }}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}

/**
 * The host clients type in `docker login` / `docker pull`: the first external URL's host (a
 * registry reference has no scheme nor path), else the host this page was loaded from.
 */
export function registryHost(info: SystemInfo | null): string {
  for (const external of info?.externalURLs ?? []) {
    try {
      return new URL(external).host;
    } catch {
      // A malformed configured URL: try the next one.
    }
  }
  return location.host;
}

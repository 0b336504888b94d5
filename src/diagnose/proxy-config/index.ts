// `berth proxy-config`: writes a reverse-proxy configuration that keeps registry pushes working
// (PROXIES.md, "A proxy configuration that works"), one module per proxy kind.
import { renderCaddy } from './caddy.ts';
import { renderHaproxy } from './haproxy.ts';
import { renderNginx } from './nginx.ts';
import { PROXY_KINDS, type ProxyConfigInput, ProxyConfigError, type ProxyKind, resolveOptions } from './options.ts';
import { renderTraefik } from './traefik.ts';

export { PROXY_KINDS, type ProxyConfigInput, ProxyConfigError, type ProxyKind, resolveOptions } from './options.ts';
export type { ProxyConfigOptions } from './options.ts';

const RENDERERS: Readonly<Record<ProxyKind, (options: ReturnType<typeof resolveOptions>) => string>> = {
  nginx: renderNginx,
  haproxy: renderHaproxy,
  caddy: renderCaddy,
  traefik: renderTraefik,
};

/** True when `kind` names a proxy this command knows. */
export function isProxyKind(kind: string): kind is ProxyKind {
  return (PROXY_KINDS as readonly string[]).includes(kind);
}

/** Validates the flags and returns the configuration text; throws ProxyConfigError naming a bad flag. */
export function generateProxyConfig(kind: string, input: ProxyConfigInput): string {
  if (!isProxyKind(kind)) throw new ProxyConfigError(`proxy kind must be one of ${PROXY_KINDS.join(', ')}, got "${kind}"`);
  return RENDERERS[kind](resolveOptions(input));
}

// Caddy: a Caddyfile (Caddy 2.6 or later) with one site in front of Berth.
import { berthSettingLines, hashComments, headerLines, hostForUrl, type ProxyConfigOptions, upstreamHostPort } from './options.ts';
import { commented as aligned } from './nginx.ts';

/** `caddy fmt` puts one space before a trailing comment; keep the output as it would. */
const commented = (indent: string, directive: string, why: string): string => aligned(indent, directive, why, 0);

/** The site address: scheme, host and the port Caddy listens on; an inner hop without TLS matches any host. */
function siteAddress(options: ProxyConfigOptions): string {
  const port = options.listen.port;
  if (!options.tls) return options.inner ? `http://:${port}` : `http://${hostForUrl(options.hostname)}:${port}`;
  return `https://${hostForUrl(options.hostname)}:${port}`;
}

/** Renders the Caddyfile for these options. */
export function renderCaddy(options: ProxyConfigOptions): string {
  const t = '\t';
  const global = [
    '{',
    commented(t, 'auto_https disable_redirects', 'no http->https redirect: it must never answer /v2/ or /service/ (M6)'),
  ];
  global.push('}');

  const site = [`${siteAddress(options)} {`];
  if (options.listen.host !== undefined) site.push(commented(t, `bind ${options.listen.host}`, 'listen on this address only'));
  if (options.tls) {
    site.push(
      commented(t, `tls ${options.tlsCert} ${options.tlsKey}`, options.tlsPlaceholder ? 'placeholder paths; drop the line to let Caddy get a certificate' : 'certificate (full chain) and key'),
    );
  }
  site.push(
    `${t}# No request_body max_size: Caddy limits no body unless told to (M7).`,
    `${t}# Authorization passes untouched; no basic_auth here (M5).`,
    `${t}# Berth (--upstream):`,
    `${t}reverse_proxy ${options.upstreamScheme}://${upstreamHostPort(options)} {`,
    `${t}${t}# Host goes to Berth exactly as the client sent it, port or not: Caddy's default, keep it (M2).`,
    options.inner
      ? commented(`${t}${t}`, 'header_up X-Forwarded-Proto {http.request.header.X-Forwarded-Proto}', 'TLS ended further out: pass its scheme on (M1)')
      : `${t}${t}# Caddy sets X-Forwarded-Proto (${options.tls ? 'https: TLS ends here' : 'http'}, M1), X-Forwarded-For and X-Forwarded-Host itself.`,
    `${t}${t}# Caddy passes on every header it does not set itself, so a client could name any address in its own`,
    `${t}${t}# Forwarded or X-Real-IP: overwrite or drop each one Berth reads (M3).`,
    commented(`${t}${t}`, 'header_up X-Real-IP {remote_host}', options.inner ? 'the address this hop saw (the outer proxy), not a claim' : 'the address Caddy saw, not what the client claims'),
    commented(`${t}${t}`, 'header_up -Forwarded', 'drop a client-sent Forwarded: Berth would believe it'),
    commented(`${t}${t}`, 'header_up -X-Forwarded-Port', 'Host already says it; drop a client-sent one (M2)'),
    commented(`${t}${t}`, 'flush_interval -1', 'stream responses (blobs) without buffering (M8)'),
    `${t}${t}transport http {`,
    commented(`${t}${t}${t}`, 'read_timeout 900s', 'a big layer takes minutes (M8)'),
    commented(`${t}${t}${t}`, 'write_timeout 900s', 'same, towards Berth'),
    `${t}${t}}`,
    `${t}}`,
    '}',
  );
  return [
    hashComments(headerLines('caddy', options, 'A Caddyfile (/etc/caddy/Caddyfile); check it with: caddy validate --adapter caddyfile --config Caddyfile')),
    '# Caddy streams request bodies and speaks HTTP/1.1 to Berth by default (M8).',
    ...global,
    '',
    ...site,
    '',
    hashComments(berthSettingLines(options)),
    '',
  ].join('\n');
}

// HAProxy: a complete haproxy.cfg (HAProxy 2.2 or later) with one frontend and one backend.
import { berthSettingLines, hashComments, headerLines, type ProxyConfigOptions } from './options.ts';
import { commented } from './nginx.ts';

/** HAProxy writes IPv6 addresses bare; the port follows the last colon. */
function bindAddress(options: ProxyConfigOptions): string {
  const { host, port } = options.listen;
  return `${host ?? ''}:${port}`;
}

/**
 * HAProxy reads the key from the certificate file itself or, failing that, from `<cert>.key`
 * (ssl-load-extra-files, default since 2.2). Any other key path needs one link, said in a comment.
 */
function keyNote(options: ProxyConfigOptions): string[] {
  if (!options.tls || options.tlsKey === `${options.tlsCert}.key`) return [];
  return [
    `HAProxy looks for the key inside ${options.tlsCert} or beside it as ${options.tlsCert}.key; link it once:`,
    `  ln -s ${options.tlsKey} ${options.tlsCert}.key`,
  ];
}

/** Renders the haproxy.cfg for these options. */
export function renderHaproxy(options: ProxyConfigOptions): string {
  const i = '    ';
  const bind = options.tls
    ? commented(i, `bind ${bindAddress(options)} ssl crt ${options.tlsCert}`, options.tlsPlaceholder ? 'TLS ends here; placeholder certificate path' : 'TLS ends here')
    : commented(i, `bind ${bindAddress(options)}`, options.inner ? 'plain HTTP from the outer proxy' : 'no TLS: the external URL is http');
  const frontend = [
    'frontend berth',
    bind,
    commented(i, 'option forwardfor', "X-Forwarded-For: the client's address, after earlier hops"),
    `${i}# HAProxy passes on every header it does not set itself, so a client could name any address in its own`,
    `${i}# Forwarded or X-Real-IP: overwrite or drop each one Berth reads (M3).`,
    commented(i, 'http-request set-header X-Real-IP %[src]', options.inner ? 'the address this hop saw (the outer proxy), not a claim' : 'the address this proxy saw, not what the client claims'),
    commented(i, 'http-request del-header Forwarded', 'drop a client-sent Forwarded: Berth would believe it'),
    commented(i, 'http-request del-header X-Forwarded-Host', 'Host already says it; drop a client-sent one'),
    commented(i, 'http-request del-header X-Forwarded-Port', 'likewise (a port in it would change the realm, M2)'),
    options.inner
      ? `${i}# X-Forwarded-Proto is passed on unchanged: TLS ended at the outer proxy, which set it (M1).`
      : commented(i, `http-request set-header X-Forwarded-Proto ${options.tls ? 'https' : 'http'}`, 'TLS ends here, so this hop tells Berth the scheme (M1)'),
    `${i}# Host and Authorization pass unchanged (HAProxy rewrites neither): M2, M5.`,
    `${i}# No redirect rules: a redirect in the middle of a push breaks it (M6).`,
    `${i}default_backend berth`,
  ];
  const server =
    options.upstreamScheme === 'https'
      ? `server berth ${options.upstreamHost}:${options.upstreamPort} ssl verify required ca-file /etc/ssl/certs/ca-certificates.crt sni str(${options.upstreamHost})`
      : `server berth ${options.upstreamHost}:${options.upstreamPort}`;
  return [
    hashComments(headerLines('haproxy', options, 'A complete /etc/haproxy/haproxy.cfg; check it with: haproxy -c -f haproxy.cfg')),
    ...(keyNote(options).length ? [hashComments(keyNote(options))] : []),
    '',
    'global',
    commented(i, 'log stdout format raw local0 info', 'one line per request to stdout (the journal under systemd)'),
    '',
    'defaults',
    commented(i, 'mode http', 'HTTP mode: HTTP/1.1 to Berth, headers are seen (M8)'),
    `${i}log global`,
    commented(i, 'option httplog', 'status, bytes and timings of each request'),
    commented(i, 'no option http-buffer-request', 'stream request bodies, never wait for them whole (M8)'),
    commented(i, 'timeout connect 10s', 'Berth should accept quickly'),
    commented(i, 'timeout client 900s', 'a big layer upload takes minutes (M8)'),
    commented(i, 'timeout server 900s', 'and so does sending it on and downloading it'),
    `${i}# No body size limit: HAProxy sets none (M7).`,
    '',
    ...frontend,
    '',
    'backend berth',
    commented(i, server, 'Berth'),
    '',
    hashComments(berthSettingLines(options)),
    '',
  ].join('\n');
}

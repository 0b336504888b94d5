// nginx: a file for the http { } context (conf.d/) with one server block in front of Berth.
import { berthSettingLines, hashComments, headerLines, hostForUrl, type ProxyConfigOptions, upstreamHostPort } from './options.ts';

/** A directive with its one-line reason, aligned at `width` so the reasons read as a column (0: one space). */
export function commented(indent: string, directive: string, why: string, width = 60): string {
  // Tabs (Caddyfile indentation) count as four columns, so reasons line up on screen.
  const columns = indent.replace(/\t/g, '    ').length + directive.length;
  return `${indent}${directive}${' '.repeat(Math.max(1, width - columns + 1))}# ${why}`;
}

function listenDirective(options: ProxyConfigOptions): string {
  const { host, port } = options.listen;
  const address = host === undefined ? String(port) : `${hostForUrl(host)}:${port}`;
  return `listen ${address}${options.tls ? ' ssl' : ''};`;
}

/** Renders the nginx configuration (a `server { }` block plus comments) for these options. */
export function renderNginx(options: ProxyConfigOptions): string {
  const s = '    ';
  const l = '        ';
  const serverLines = [
    commented(s, listenDirective(options), options.tls ? 'TLS ends here' : options.inner ? 'plain HTTP from the outer proxy' : 'no TLS: the external URL is http'),
    commented(s, `server_name ${options.inner ? '_' : options.hostname};`, options.inner ? 'any name: the outer proxy already chose this site' : `the host name in ${options.externalUrl}`),
  ];
  if (options.tls) {
    serverLines.push(
      commented(s, `ssl_certificate ${options.tlsCert};`, options.tlsPlaceholder ? 'placeholder: full chain of your certificate' : 'certificate with its full chain'),
      commented(s, `ssl_certificate_key ${options.tlsKey};`, options.tlsPlaceholder ? 'placeholder: its private key' : 'its private key'),
    );
  }
  serverLines.push(
    '',
    commented(s, 'client_max_body_size 0;', 'no body limit: layers are gigabytes, the 1m default gives 413 (M7)'),
    commented(s, 'chunked_transfer_encoding on;', 'clients stream uploads and Berth streams blobs in chunks'),
  );

  const proto = options.inner
    ? commented(l, 'proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;', 'TLS ended further out: pass its scheme on unchanged (M1)')
    : commented(l, 'proxy_set_header X-Forwarded-Proto $scheme;', 'TLS ends here, so this hop tells Berth the scheme (M1)');
  const locationLines = [
    commented(l, `proxy_pass ${options.upstreamScheme}://${upstreamHostPort(options)};`, 'Berth; no URI part, so paths pass unchanged'),
    commented(l, 'proxy_set_header Host $http_host;', 'Host exactly as the client sent it, port or not (M2)'),
    proto,
    commented(l, 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;', "the client's address, after earlier hops"),
    `${l}# nginx passes on every header it does not set itself, so a client could name any address in its own`,
    `${l}# Forwarded or X-Real-IP: overwrite or drop each one Berth reads (an empty value is not sent) (M3).`,
    commented(l, 'proxy_set_header X-Real-IP $remote_addr;', options.inner ? 'the address this hop saw (the outer proxy), not a claim' : 'the address this proxy saw, not what the client claims'),
    commented(l, 'proxy_set_header Forwarded "";', 'drop a client-sent Forwarded: Berth would believe it'),
    commented(l, 'proxy_set_header X-Forwarded-Host "";', 'Host already says it; drop a client-sent one'),
    commented(l, 'proxy_set_header X-Forwarded-Port "";', 'likewise (a port in it would change the realm, M2)'),
    commented(l, 'proxy_http_version 1.1;', 'HTTP/1.1 to Berth: chunked bodies and keep-alive (M8)'),
    commented(l, 'proxy_request_buffering off;', 'stream uploads instead of spooling them to disk (M8)'),
    commented(l, 'proxy_buffering off;', 'stream downloads too'),
    commented(l, 'proxy_connect_timeout 60s;', 'Berth should accept within a minute'),
    commented(l, 'proxy_read_timeout 900s;', 'a big layer takes minutes; 60s cuts it (M8)'),
    commented(l, 'proxy_send_timeout 900s;', 'same, towards Berth'),
  ];
  if (options.upstreamScheme === 'https') {
    locationLines.push(
      commented(l, 'proxy_ssl_server_name on;', "send Berth's host name in SNI"),
      commented(l, 'proxy_ssl_verify on;', "check Berth's certificate"),
      commented(l, 'proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;', 'CAs to check it against'),
    );
  }
  locationLines.push(
    `${l}# Authorization passes untouched: no auth_basic, no proxy_set_header Authorization (M5).`,
    `${l}# No return/rewrite here: a redirect in the middle of a push breaks it (M6).`,
  );

  return [
    hashComments(headerLines('nginx', options, 'Put this file in /etc/nginx/conf.d/ (it belongs in the http { } context), then: nginx -t && nginx -s reload')),
    options.tls && !options.inner
      ? '# No port-80 server: a redirect must never answer /v2/ or /service/ (M6); clients are configured with https.'
      : undefined,
    '',
    'server {',
    ...serverLines,
    '',
    '    location / {',
    ...locationLines,
    '    }',
    '}',
    '',
    hashComments(berthSettingLines(options)),
    '',
  ]
    .filter((x) => x !== undefined)
    .join('\n');
}

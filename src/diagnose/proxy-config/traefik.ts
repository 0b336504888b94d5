// Traefik (v2.11 / v3): a dynamic configuration for the file provider, plus the static settings it
// needs, as comments (entry points and their timeouts live in the static configuration).
import { berthSettingLines, hashComments, headerLines, listenHostPort, type ProxyConfigOptions, upstreamHostPort } from './options.ts';

/** A YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (value: string): string => JSON.stringify(value);

function staticNote(options: ProxyConfigOptions): string[] {
  const lines = [
    'Static configuration (traefik.yml), which this file cannot set:',
    '  entryPoints:',
    '    berth:',
    `      address: ${q(listenHostPort(options.listen))}`,
    '      transport:',
    '        respondingTimeouts:',
    '          readTimeout: 0      # no limit on reading a request: big layer uploads take minutes (M8)',
    '          writeTimeout: 0     # nor on writing a response (big layer downloads)',
  ];
  if (options.inner) {
    lines.push(
      '      forwardedHeaders:',
      '        trustedIPs: ["<outer proxy address>"]   # pass its X-Forwarded-Proto/-For on (M1)',
    );
  }
  lines.push('  providers:', '    file:', '      filename: /etc/traefik/berth.yml   # this file');
  return lines;
}

/** Renders the dynamic configuration YAML for these options. */
export function renderTraefik(options: ProxyConfigOptions): string {
  const router = [
    '  routers:',
    '    berth:',
    `      rule: ${q(options.inner && !options.tls ? 'PathPrefix(`/`)' : `Host(\`${options.hostname}\`)`)}`,
    '      entryPoints: [berth]',
    '      service: berth',
    '      middlewares: [berth-forwarded]',
    ...(options.tls ? ['      tls: {}                       # TLS ends here; certificate below'] : []),
    '      # No redirect middleware on this router: a redirect in the middle of a push breaks it (M6).',
    '      # No basicAuth middleware: Authorization must reach Berth untouched (M5).',
    '      # No buffering middleware: it would cap bodies (M7) and spool uploads (M8).',
  ];
  const middlewares = [
    '  middlewares:',
    '    berth-forwarded:',
    "      # Traefik sets X-Forwarded-* and X-Real-Ip itself (dropping an untrusted client's own) but passes on",
    '      # every other header: a client could name any address in its own Forwarded, which Berth reads (M3).',
    '      headers:',
    '        customRequestHeaders:',
    '          Forwarded: ""              # an empty value removes the header: drop a client-sent Forwarded',
  ];
  const service = [
    '  services:',
    '    berth:',
    '      loadBalancer:',
    '        passHostHeader: true        # Host exactly as the client sent it, port or not (M2)',
    '        responseForwarding:',
    '          flushInterval: -1ms        # stream blobs as they come (M8)',
    '        servers:',
    `          - url: ${q(`${options.upstreamScheme}://${upstreamHostPort(options)}`)}   # Berth`,
  ];
  const scheme = options.inner
    ? "# X-Forwarded-Proto/-For: passed on from the outer proxy listed in forwardedHeaders.trustedIPs (M1)."
    : '# X-Forwarded-Proto/-For: Traefik sets them itself, and TLS ends here (M1).';
  const tls = options.tls
    ? [
        'tls:',
        '  certificates:',
        `    - certFile: ${q(options.tlsCert)}${options.tlsPlaceholder ? '   # placeholder path' : ''}`,
        `      keyFile: ${q(options.tlsKey)}${options.tlsPlaceholder ? '   # placeholder path' : ''}`,
      ]
    : [];
  return [
    hashComments(headerLines('traefik', options, 'Dynamic configuration for the file provider (/etc/traefik/berth.yml).')),
    hashComments(staticNote(options)),
    scheme,
    '# Traefik speaks HTTP/1.1 to Berth and sets no body size limit by default (M7, M8).',
    '',
    'http:',
    ...router,
    ...middlewares,
    ...service,
    ...tls,
    '',
    hashComments(berthSettingLines(options)),
    '',
  ].join('\n');
}

// `/system/connection`: how the caller's own request reached Berth beside the configured external
// URLs — the portal's connection check. The request is read the way every other request is
// (src/http/forwarded.ts, realm.ts), and a disagreement is named with the mechanism and fix that
// `berth doctor` gives for the same evidence (src/diagnose/doctor/), so the three never differ.
import { z } from 'zod';
import { MECHANISM_NAMES, urlFindings } from '../../diagnose/doctor/findings.ts';
import { judgeNextUrl, parseTarget } from '../../diagnose/doctor/urls.ts';
import type { Context } from '../context.ts';
import { forwardingHeaders } from '../forwarded.ts';
import { externalBase, matchExternalURL, urlOrigin } from '../realm.ts';
import { requireSignedIn, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** Longest echoed header value; longer ones are cut and end in `…`. */
const VALUE_MAX = 512;

/** A disagreement between how the request arrived and how Berth is configured. */
export interface ConnectionProblem {
  /** Stable code, for the portal's message catalogue. */
  id: 'forwarded-untrusted' | 'forwarded-conflict' | 'scheme-mismatch' | 'host-mismatch' | 'external-url-missing';
  /** The PROXIES.md mechanism (M1…M11) where one applies. */
  mechanism: 'M1' | 'M2' | 'M3' | null;
  message: string;
  fix: string;
}

const problem = z.object({
  id: z.enum(['forwarded-untrusted', 'forwarded-conflict', 'scheme-mismatch', 'host-mismatch', 'external-url-missing']),
  mechanism: z.enum(['M1', 'M2', 'M3']).nullable().describe('the mechanism of design/PROXIES.md, as berth doctor names it'),
  message: z.string(),
  fix: z.string(),
});

const connectionView = z.object({
  request: z.object({
    host: z.string().nullable().describe('the Host header as Berth received it'),
    scheme: z.enum(['http', 'https']).describe('the scheme of the connection to Berth itself'),
    forwarded: z.record(z.string(), z.string()).describe('forwarding headers received (lower-case names; values cut at 512 characters), trusted or not'),
    peer: z.string().describe('the address that connected to Berth'),
    client: z.string().describe('the client address as Berth resolved it (forwarded headers count only from trusted proxies)'),
    trustedProxy: z.boolean().describe('whether the peer is one of trustedProxies'),
    source: z.enum(['connection', 'forwarded', 'x-forwarded']).describe('where Berth took the scheme and host from'),
  }),
  origin: z.string().describe('the URL Berth derived for this request (scheme and host as resolved)'),
  externalURLs: z.array(z.string()),
  agrees: z.boolean().describe('the derived origin is one of externalURLs; without any configured: nothing looks rewritten'),
  problems: z.array(problem),
  doctorCommand: z.string().describe('the berth doctor command to run from a client machine'),
});

function parseURL(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function cap(value: string): string {
  return value.length > VALUE_MAX ? `${value.slice(0, VALUE_MAX)}…` : value;
}

/** The doctor's fix without its registry-side advice: externalURL is set already here. */
function proxySide(fix: string): string {
  const cut = fix.indexOf(' Berth: set `externalURL`');
  return cut < 0 ? fix : fix.slice(0, cut);
}

/** What the connection check finds for `ctx`'s request. */
export function checkConnection(ctx: Context, externalURLs: readonly string[], username?: string): z.output<typeof connectionView> {
  const { origin: resolved } = ctx;
  const forwarded = Object.fromEntries(Object.entries(forwardingHeaders(ctx.req) ?? {}).map(([name, value]) => [name, cap(value)]));
  const socket = ctx.req.socket;
  const derivedText = externalBase(resolved, [], socket.localAddress ?? '127.0.0.1', socket.localPort ?? 0);
  const origin = cap(derivedText);
  const host = ctx.req.headers.host;
  const problems: ConnectionProblem[] = [];
  const sent = (...names: string[]) => names.filter((name) => forwarded[name] !== undefined);
  const proxyHeaders = sent('forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip');

  if (proxyHeaders.length > 0 && !resolved.trustedProxy) {
    problems.push({
      id: 'forwarded-untrusted',
      mechanism: 'M3',
      message: `${proxyHeaders.join(', ')} arrived from ${resolved.peer}, which is not in trustedProxies: Berth ignored them (${MECHANISM_NAMES.M3})`,
      fix: `If ${resolved.peer} is your reverse proxy, add it to trustedProxies (e.g. BERTH_TRUSTED_PROXIES=${resolved.peer}); if it is not, a client sent these headers and ignoring them is right.`,
    });
  }
  if (resolved.conflict) {
    problems.push({
      id: 'forwarded-conflict',
      mechanism: 'M3',
      message: `the headers naming the client disagree (${Object.entries(resolved.conflict).map(([name, value]) => `${name}: ${cap(value)}`).join('; ')}): Berth believed none of them`,
      fix: 'Make the proxy nearest Berth set one family of headers and overwrite what clients send: `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;` and `proxy_set_header Forwarded "";` (or the reverse), likewise X-Real-IP.',
    });
  }

  let agrees: boolean;
  if (externalURLs.length > 0) {
    const derived = parseURL(derivedText);
    agrees = derived !== undefined && externalURLs.some((url) => urlOrigin(new URL(url)) === urlOrigin(derived));
    if (!derived) {
      problems.push({
        id: 'host-mismatch',
        mechanism: 'M2',
        message: `this request named host "${cap(resolved.host ?? '')}", which is no valid host name: no external URL names it (${MECHANISM_NAMES.M2})`,
        fix: 'Make the proxy pass the Host exactly as the client sent it: `proxy_set_header Host $http_host;` (and X-Forwarded-Host, if it sets one, likewise).',
      });
    } else if (!agrees) {
      // The same judgement `berth doctor` makes of an upload URL against the URL the user typed.
      const nearest = matchExternalURL(resolved, externalURLs)!;
      const seen = `${derived.origin}/v2/`;
      const expected = parseTarget(nearest);
      const judgement = judgeNextUrl(seen, seen, expected);
      const ignored = (names: string[]) => problems.some((p) => p.id === 'forwarded-untrusted') && sent(...names).length > 0;
      const trustFix = `The proxy sent ${sent('forwarded', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port').join(', ')}, but Berth ignores them from ${resolved.peer}: add it to trustedProxies.`;
      for (const finding of urlFindings(judgement, [], 'berth', false)) {
        if (finding.mechanism === 'M1') {
          const unstated = resolved.scheme === 'http' && !resolved.schemeForwarded ? ' (no trusted proxy stated X-Forwarded-Proto, so Berth took the scheme of its own connection)' : '';
          problems.push({
            id: 'scheme-mismatch',
            mechanism: 'M1',
            message: `this request reached Berth as ${resolved.scheme}://, the external URL ${nearest} is ${expected.scheme}://${unstated} (${MECHANISM_NAMES.M1})`,
            fix: ignored(['forwarded', 'x-forwarded-proto']) ? trustFix : proxySide(finding.fix),
          });
        } else if (finding.mechanism === 'M2') {
          const how = judgement.sameCanonical ? ': only an explicit default port differs' : judgement.sameHostname ? ': the port differs' : '';
          problems.push({
            id: 'host-mismatch',
            mechanism: 'M2',
            message: `this request named host "${cap(resolved.host ?? derived.host)}", no external URL names it (nearest: ${nearest})${how} (${MECHANISM_NAMES.M2})`,
            fix: ignored(['forwarded', 'x-forwarded-host', 'x-forwarded-port']) ? trustFix : proxySide(finding.fix),
          });
        }
      }
    }
  } else {
    const behindProxy = resolved.trustedProxy || proxyHeaders.length > 0 || sent('via').length > 0 || (!ctx.secure && /[^:]:443$/.test(host ?? ''));
    if (behindProxy) {
      problems.push({
        id: 'external-url-missing',
        mechanism: 'M2',
        message: 'no externalURL is configured and this request came through a proxy: the token realm is derived from each request\'s Host and scheme, which a proxy may rewrite (M1/M2)',
        fix: `Set externalURL to the URL clients type (e.g. BERTH_EXTERNAL_URL=${origin} if that is it), and trustedProxies to the proxy's address (${resolved.peer}).`,
      });
    }
    agrees = problems.length === 0;
  }

  const target = matchExternalURL(resolved, externalURLs) ?? origin;
  const user = username && /^[A-Za-z0-9._@-]{1,64}$/.test(username) ? ` -u ${username}` : '';
  return {
    request: {
      host: host === undefined ? null : cap(host),
      scheme: ctx.secure ? 'https' : 'http',
      forwarded,
      peer: resolved.peer,
      client: resolved.client,
      trustedProxy: resolved.trustedProxy,
      source: resolved.source,
    },
    origin,
    externalURLs: [...externalURLs],
    agrees,
    problems,
    doctorCommand: `berth doctor ${target}${user}`,
  };
}

/** GET `/system/connection` (any signed-in user; the portal shows administrators a banner when `agrees` is false). */
export function connectionOperations(services: ApiServices): Operation[] {
  return [
    operation({
      id: 'connectionCheck',
      method: 'GET',
      path: '/system/connection',
      tag: 'system',
      summary: 'How this request reached Berth (host, scheme, forwarded headers, client address) beside the configured external URLs, with what disagrees and the fix',
      description:
        'For the caller\'s own request: the headers echoed are the caller\'s (never Authorization or Cookie), values cut at 512 characters. ' +
        '`problems` name the mechanism of design/PROXIES.md as `berth doctor` does; `doctorCommand` is the command to run from a client machine.',
      response: connectionView,
      handler: async ({ ctx, identity }) => {
        requireSignedIn(identity);
        return { body: checkConnection(ctx, services.config.externalURL, identity.kind === 'user' ? identity.name : undefined) };
      },
    }),
  ];
}

// Reverse-proxy topologies in front of Berth and the reference registry, each a real nginx (one or
// two layers) on its own address inside a test network namespace, under its own host names.
// Every mechanism of PROXIES.md that a proxy configuration can cause gets one topology.
import { addHostsEntry } from './hosts.ts';
import type { ClientTls } from './client-common.ts';
import type { TestNetns } from './netns.ts';
import {
  type NginxInstance,
  HOST_WITH_PORT_DIRECTIVES,
  RECOMMENDED_PROXY_DIRECTIVES,
  STREAMING_PROXY_DIRECTIVES,
  startNginx,
} from './nginx.ts';
import type { ProcessRegistry } from './processes.ts';
import type { TlsMaterial } from './tls.ts';

const FORWARDED_FOR = 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;';
const XFP_SCHEME = 'proxy_set_header X-Forwarded-Proto $scheme;';
/** Port of the inner, plain-HTTP layer of two-layer topologies (inside the namespace, on its loopback). */
const INNER_PORT = 8080;

/** What one topology is; {@link TOPOLOGIES} lists them all. */
export interface TopologySpec {
  readonly id: number;
  /** Short slug, e.g. `host-with-port`. */
  readonly slug: string;
  /** One line for test names and reports. */
  readonly summary: string;
  /** PROXIES.md mechanism(s) it exercises. */
  readonly mechanisms: readonly string[];
  /** True when a registry can make every client work through it (Berth must). */
  readonly survivable: boolean;
  /** TLS port of the outermost layer; default 443. */
  readonly tlsPort?: number;
  /** `location /` directives of the outermost (TLS) layer. */
  readonly outer: readonly string[];
  /** When set, a second plain-HTTP nginx between the outer one and the registry, with these directives. */
  readonly inner?: readonly string[];
  /** When set, clients use http://name, where a plain :80 server redirects to https (M6). */
  readonly redirectFromHttp?: boolean;
  /**
   * For topologies that break pushes: an nginx access-log line (format of nginx.ts) that shows the
   * breakage, so a test can tell "failed for this reason" from "failed somehow".
   */
  readonly accessLogEvidence?: RegExp;
}

/** The matrix: 1–6 survivable, 7–9 not (nothing a registry can do about them). */
export const TOPOLOGIES: readonly TopologySpec[] = [
  {
    id: 1, slug: 'recommended', summary: 'Host $http_host, X-Forwarded-Proto $scheme, streaming', mechanisms: [], survivable: true,
    outer: RECOMMENDED_PROXY_DIRECTIVES,
  },
  {
    id: 2, slug: 'host-with-port', summary: 'Host $host:$server_port', mechanisms: ['M2'], survivable: true,
    outer: HOST_WITH_PORT_DIRECTIVES,
  },
  {
    // Berth sees Host 127.0.0.1:5000, matches no external URL and names the first one (t1's) in
    // the realm: tokens come from another public name of the same server, which clients accept.
    id: 3, slug: 'default-host', summary: 'no Host set (nginx sends the upstream address)', mechanisms: ['M2'], survivable: true,
    outer: [...STREAMING_PROXY_DIRECTIVES, XFP_SCHEME, FORWARDED_FOR],
  },
  {
    id: 4, slug: 'no-forwarded-proto', summary: 'no X-Forwarded-Proto', mechanisms: ['M1'], survivable: true,
    outer: [...STREAMING_PROXY_DIRECTIVES, 'proxy_set_header Host $http_host;', FORWARDED_FOR],
  },
  {
    id: 5, slug: 'two-layers', summary: 'TLS nginx → plain nginx setting X-Forwarded-Proto http', mechanisms: ['M1'],
    survivable: true,
    outer: RECOMMENDED_PROXY_DIRECTIVES,
    inner: [...STREAMING_PROXY_DIRECTIVES, 'proxy_set_header Host $http_host;', 'proxy_set_header X-Forwarded-Proto http;', FORWARDED_FOR],
  },
  {
    id: 6, slug: 'port-8443-host-only', summary: 'TLS on :8443, Host $host (port dropped)', mechanisms: ['M2'], survivable: true,
    tlsPort: 8443,
    outer: [...STREAMING_PROXY_DIRECTIVES, 'proxy_set_header Host $host;', XFP_SCHEME, FORWARDED_FOR],
  },
  {
    id: 7, slug: 'default-body-limit', summary: 'default client_max_body_size (1 MiB)', mechanisms: ['M7'], survivable: false,
    outer: RECOMMENDED_PROXY_DIRECTIVES.filter((d) => !d.startsWith('client_max_body_size')),
    accessLogEvidence: /"(PUT|PATCH) \/v2\/[^"]*" 413 /,
  },
  {
    id: 8, slug: 'authorization-stripped', summary: 'proxy_set_header Authorization ""', mechanisms: ['M5'], survivable: false,
    outer: [...RECOMMENDED_PROXY_DIRECTIVES, 'proxy_set_header Authorization "";'],
    // The client sent credentials, yet the registry (which never saw them) answered 401.
    accessLogEvidence: /"[A-Z]+ \/v2\/[^"]*" 401 host="[^"]*" auth=(basic|bearer) /,
  },
  {
    id: 9, slug: 'http-redirect', summary: 'http://name answers 301 to https', mechanisms: ['M6'], survivable: false,
    outer: RECOMMENDED_PROXY_DIRECTIVES, redirectFromHttp: true,
    // An upload start redirected: Go clients follow a 301 for POST as a GET.
    accessLogEvidence: /"POST \/v2\/[^"]*" 301 /,
  },
];

/** Host names of a topology under `domain`: Berth's and the reference registry's. */
export function topologyNames(spec: TopologySpec, domain: string): { berth: string; ref: string } {
  return { berth: `t${spec.id}.${domain}`, ref: `ref-t${spec.id}.${domain}` };
}

/** The https URL a topology serves Berth at (what Berth's externalURL lists). */
export function topologyExternalURL(spec: TopologySpec, domain: string): string {
  const port = spec.tlsPort && spec.tlsPort !== 443 ? `:${spec.tlsPort}` : '';
  return `https://${topologyNames(spec, domain).berth}${port}`;
}

/** A started topology: what a test (and later `berth doctor` / `berth logs explain`) needs. */
export interface Topology {
  readonly spec: TopologySpec;
  /** `t<id>-<slug>`. */
  readonly name: string;
  readonly survivable: boolean;
  /** The namespace address its nginx listens on (the hosts file maps both names here). */
  readonly address: string;
  /** Host[:port] clients use for Berth, e.g. `t6.x.test:8443` (no scheme). */
  readonly berthHost: string;
  /** URL clients use for Berth: https, except http for the redirect topology. */
  readonly berthURL: string;
  /** Berth's configured external URL for this topology (always https). */
  readonly externalURL: string;
  readonly refHost: string;
  readonly refURL: string;
  /** How clients reach it (CA to trust; plain HTTP first for the redirect topology, ctr only). */
  readonly clientTls: ClientTls;
  /** Every nginx of the topology, outermost first; each has its access and error log. */
  readonly nginx: readonly NginxInstance[];
}

/** Where the registries listen inside the namespace, and shared material. */
export interface TopologyContext {
  readonly netns: TestNetns;
  readonly domain: string;
  readonly tls: TlsMaterial;
  /** e.g. `http://127.0.0.1:5000` (inside the namespace). */
  readonly berthUpstream: string;
  readonly refUpstream: string;
  /** Registers nginx processes and hosts entries for after(). */
  readonly registry: ProcessRegistry;
}

/**
 * Gives the topology its own namespace address, maps both names to it in /etc/hosts and starts its
 * nginx instance(s) inside the namespace.
 */
export async function startTopology(spec: TopologySpec, context: TopologyContext): Promise<Topology> {
  const { netns, registry, tls } = context;
  const names = topologyNames(spec, context.domain);
  const address = await netns.addAddress();
  for (const name of [names.berth, names.ref]) {
    const entry = await addHostsEntry(address, name, '/etc/hosts', netns.addresses);
    registry.defer(`hosts entry ${name}`, () => entry.remove());
  }
  const instances: NginxInstance[] = [];
  let berthUpstream = context.berthUpstream;
  let refUpstream = context.refUpstream;
  if (spec.inner) {
    const inner = await startNginx({
      listenIp: '127.0.0.1', listenPort: INNER_PORT + spec.id, serverName: names.berth, upstream: berthUpstream,
      locationDirectives: spec.inner, extraServers: [{ serverName: names.ref, upstream: refUpstream, locationDirectives: spec.inner }],
      netns, registry,
    });
    instances.push(inner);
    berthUpstream = refUpstream = `http://127.0.0.1:${INNER_PORT + spec.id}`;
  }
  const tlsPort = spec.tlsPort ?? 443;
  const outer = await startNginx({
    listenIp: address, listenPort: tlsPort, serverName: names.berth, tls, upstream: berthUpstream, locationDirectives: spec.outer,
    extraServers: [{ serverName: names.ref, upstream: refUpstream, locationDirectives: spec.outer }],
    netns, registry,
  });
  instances.unshift(outer);
  const hostPort = (name: string): string => (tlsPort === 443 ? name : `${name}:${tlsPort}`);
  if (spec.redirectFromHttp) {
    const redirect = ['return 301 https://$host$request_uri;'];
    const http = await startNginx({
      listenIp: address, listenPort: 80, serverName: names.berth, upstream: berthUpstream,
      locationDirectives: [], serverDirectives: redirect,
      extraServers: [{ serverName: names.ref, upstream: refUpstream, locationDirectives: [], serverDirectives: redirect }],
      netns, registry,
    });
    instances.unshift(http);
    return {
      spec, name: `t${spec.id}-${spec.slug}`, survivable: spec.survivable, address,
      berthHost: names.berth, berthURL: `http://${names.berth}`, externalURL: topologyExternalURL(spec, context.domain),
      refHost: names.ref, refURL: `http://${names.ref}`,
      clientTls: { caFile: tls.caCert, plainHttp: true }, nginx: instances,
    };
  }
  return {
    spec, name: `t${spec.id}-${spec.slug}`, survivable: spec.survivable, address,
    berthHost: hostPort(names.berth), berthURL: `https://${hostPort(names.berth)}`, externalURL: topologyExternalURL(spec, context.domain),
    refHost: hostPort(names.ref), refURL: `https://${hostPort(names.ref)}`,
    clientTls: { caFile: tls.caCert }, nginx: instances,
  };
}

/** A registry behind the topologies: Berth, or the reference registry (CNCF Distribution 2.8, htpasswd Basic auth). */
export type MatrixRegistry = 'berth' | 'ref';
/** A client the matrix pushes with. */
export type MatrixClient = 'docker' | 'ctr' | 'skopeo';
/** How a push through a topology ends: `pass`, or the PROXIES.md mechanism that breaks it. */
export type PushOutcome = 'pass' | 'M1' | 'M2' | 'M5' | 'M6' | 'M7';

/** What a push must end in, and why, in one line. */
export interface PushExpectation {
  readonly outcome: PushOutcome;
  readonly why: string;
}

const BERTH_SURVIVES = 'Berth keeps upload Locations relative and takes the realm from its configured external URLs, so the client stays on the name it chose';

/**
 * The facts the proxy matrix asserts, per topology: what a push through it ends in, for Berth and
 * for the reference registry (whose absolute upload Location is built from Host and
 * X-Forwarded-Proto). `refByClient` overrides `ref` for clients that survive a mechanism
 * (PROXIES.md: the classic Docker client normalises default ports, containers/image attaches
 * credentials to any URL of the same registry; containerd compares hosts as raw strings).
 * The matrix's doctor expectations and the `logs explain` corpus (test/fixtures/logs/real-matrix/)
 * both derive from this table; neither from what a diagnosis printed.
 */
export const PUSH_EXPECTATIONS: Readonly<Record<number, {
  readonly berth: PushExpectation;
  readonly ref: PushExpectation;
  readonly refByClient?: Partial<Record<MatrixClient, PushExpectation>>;
}>> = {
  1: {
    berth: { outcome: 'pass', why: 'recommended proxy: Host as the client sent it, X-Forwarded-Proto https, streaming' },
    ref: { outcome: 'pass', why: 'recommended proxy: Distribution\'s absolute Location names exactly the host the client uses' },
  },
  2: {
    berth: { outcome: 'pass', why: `Host name:443 reaches Berth; ${BERTH_SURVIVES}` },
    ref: { outcome: 'M2', why: 'Host $host:$server_port → Location https://name:443/…; containerd compares hosts as strings and sends the PUT/PATCH without credentials → 401' },
    refByClient: {
      docker: { outcome: 'pass', why: 'Host name:443 → Location https://name:443/…, but the classic Docker client normalises default ports, so it keeps its credentials' },
      skopeo: { outcome: 'pass', why: 'Host name:443 → Location https://name:443/…, but containers/image attaches credentials to any URL of the same registry' },
    },
  },
  3: {
    berth: { outcome: 'pass', why: `Host is nginx's default (the upstream 127.0.0.1:5000); ${BERTH_SURVIVES}` },
    ref: { outcome: 'M2', why: 'no Host set → nginx sends the upstream address 127.0.0.1:5001; the Location names it, which the client cannot reach' },
  },
  4: {
    berth: { outcome: 'pass', why: `no X-Forwarded-Proto; ${BERTH_SURVIVES}` },
    ref: { outcome: 'M1', why: 'no X-Forwarded-Proto → Distribution sees plain http and sends Location http://name/…; nothing serves port 80 there' },
  },
  5: {
    berth: { outcome: 'pass', why: `the inner hop says X-Forwarded-Proto http; ${BERTH_SURVIVES}` },
    ref: { outcome: 'M1', why: 'the inner hop overwrites X-Forwarded-Proto with http → Location http://name/…; nothing serves port 80 there' },
  },
  6: {
    berth: { outcome: 'pass', why: `Host $host drops :8443; ${BERTH_SURVIVES}` },
    ref: { outcome: 'M2', why: 'Host $host drops the non-default port :8443 → Location https://name/… (port 443), where nothing listens' },
  },
  7: {
    berth: { outcome: 'M7', why: 'nginx\'s default client_max_body_size (1 MiB) refuses the 1.6 MB layer with 413 before the registry sees it' },
    ref: { outcome: 'M7', why: 'nginx\'s default client_max_body_size (1 MiB) refuses the 1.6 MB layer with 413 before the registry sees it' },
  },
  8: {
    berth: { outcome: 'M5', why: 'proxy_set_header Authorization "" → no credentials ever reach Berth; every authenticated request is refused 401' },
    ref: { outcome: 'M5', why: 'proxy_set_header Authorization "" → the Basic credentials never reach the registry; every request is refused 401' },
  },
  9: {
    berth: { outcome: 'M6', why: 'the client uses http://name, which answers 301 to https for /v2/ (an upload POST is redirected)' },
    ref: { outcome: 'M6', why: 'the client uses http://name, which answers 301 to https for /v2/ (an upload POST is redirected)' },
  },
};

/** What a push by `client` to `registry` through topology `id` must end in (see {@link PUSH_EXPECTATIONS}). */
export function expectedPush(id: number, registry: MatrixRegistry, client: MatrixClient): PushExpectation {
  const facts = PUSH_EXPECTATIONS[id];
  if (!facts) throw new Error(`no push expectations for topology ${id}`);
  if (registry === 'berth') return facts.berth;
  return facts.refByClient?.[client] ?? facts.ref;
}

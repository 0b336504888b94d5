import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { OidcError } from './errors.ts';

/** The fetch both openid-client and jose are given: (url, init) → a WHATWG Response. */
export type ProviderFetch = (url: string, init: { body?: unknown; headers?: unknown; method?: string; redirect?: string; signal?: AbortSignal }) => Promise<Response>;

/** Whether `url` names this machine (127.0.0.0/8, ::1, localhost): the only place plain http is allowed. */
export function isLoopbackURL(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * How Berth talks to the provider: one undici Agent (the configured CA added to the system's,
 * connect/headers/body timeouts), and a fetch that refuses plain http to anything but loopback —
 * so a discovery document cannot send a code or secret over http to another host even though
 * openid-client's allowInsecureRequests is on for a loopback issuer.
 */
export class ProviderTransport {
  readonly fetch: ProviderFetch;
  readonly #agent: Agent;

  private constructor(agent: Agent) {
    this.#agent = agent;
    this.fetch = async (url, init) => {
      const target = new URL(url);
      if (target.protocol !== 'https:' && !(target.protocol === 'http:' && isLoopbackURL(target))) {
        throw new OidcError('unsupported', `refusing a plain-http request to the OpenID provider at ${target.host} (https is required except on this machine)`);
      }
      // undici's Response is WHATWG-compatible; openid-client and jose only need that.
      return (await undiciFetch(url, { ...(init as Record<string, unknown>), dispatcher: this.#agent })) as unknown as Response;
    };
  }

  /** Builds the transport; throws when `caFile` cannot be read (a configuration error, named). */
  static async create(options: { caFile?: string; timeoutMs: number }): Promise<ProviderTransport> {
    let ca: string[] | undefined;
    if (options.caFile !== undefined) {
      let pem: string;
      try {
        pem = await readFile(options.caFile, 'utf8');
      } catch (error) {
        throw new Error(`cannot read auth.oidc.caFile ${options.caFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
      }
      ca = [...rootCertificates, pem];
    }
    const agent = new Agent({
      connect: { timeout: options.timeoutMs, ...(ca ? { ca } : {}) },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 4_000,
    });
    return new ProviderTransport(agent);
  }

  /** Closes idle connections; requests after this fail. */
  close(): Promise<void> {
    return this.#agent.close();
  }
}

// Opening one connection to the directory (plain, StartTLS or LDAPS, each step bounded by the
// timeout) and turning whatever went wrong into a message an administrator can act on.
import net from 'node:net';
import tls from 'node:tls';
import { Client, ResultCodeError } from 'ldapts';
import { IdentitySourceUnavailableError } from '../external.ts';

/** Where and how to connect; built once from the configuration. */
export interface LdapTarget {
  url: string;
  /** `host:port`, for messages. */
  address: string;
  host: string;
  startTLS: boolean;
  /** TLS options for ldaps:// or the StartTLS upgrade (CA, verification, server name). */
  tls: tls.ConnectionOptions;
  /** Milliseconds for connecting and for each operation. */
  timeoutMs: number;
}

/**
 * An open connection. ldapts would silently open a new socket when the old one closed, and run the
 * next operation on it unauthenticated (and, after StartTLS, in clear text); openConnection keeps
 * that from happening: a closed connection stays closed and its next operation fails.
 */
export interface LdapConnection {
  client: Client;
  /** Whether the service bind (or anonymous access) is still in force. */
  usable(): boolean;
}

const NO_RECONNECT = 'ldap connection closed';

/** Opens a connection (and upgrades it with StartTLS when configured). Rejects with the raw cause; see {@link unavailable}. */
export async function openConnection(target: LdapTarget): Promise<LdapConnection> {
  let opened = false;
  const once = (): void => {
    if (opened) throw new Error(NO_RECONNECT);
    opened = true;
  };
  const client = new Client({
    url: target.url,
    timeout: target.timeoutMs,
    connectTimeout: target.timeoutMs,
    // For ldap:// the TLS options go to startTLS(): given here they would make ldapts speak TLS at once.
    tlsOptions: target.url.startsWith('ldaps:') ? target.tls : undefined,
    createConnection: ((...args: Parameters<typeof net.connect>) => {
      once();
      return net.connect(...args);
    }) as typeof net.connect,
    createSecureConnection: ((...args: Parameters<typeof tls.connect>) => {
      // The StartTLS upgrade wraps the existing socket; anything else is a (re)connect.
      const upgrade = typeof args[0] === 'object' && args[0] !== null && 'socket' in args[0];
      if (!upgrade) once();
      return tls.connect(...args);
    }) as typeof tls.connect,
  });
  try {
    if (target.startTLS) await bounded(client.startTLS({ ...target.tls }), target.timeoutMs, 'starttls');
    else await bounded(connectOnly(client), target.timeoutMs, 'connect');
  } catch (error) {
    await closeConnection(client);
    throw error;
  }
  return { client, usable: () => client.isConnected };
}

/** Connects without sending anything: a root DSE read would be refused by some directories before a bind. */
async function connectOnly(client: Client): Promise<void> {
  // ldapts connects lazily; its private _connect is the only way to surface TLS and refused
  // connections here rather than in the middle of the first operation.
  // Without it (another ldapts version) the first operation connects, and fails the same way.
  const c = client as unknown as { _connect?: () => Promise<void> | void };
  if (typeof c._connect === 'function') await c._connect.call(client);
}

/** Closes quietly: an unbind on a dead connection has nothing to say. */
export async function closeConnection(client: Client): Promise<void> {
  try {
    await bounded(client.unbind(), 2_000, 'unbind');
  } catch {
    // already closed
  }
}

class Timeout extends Error {
  constructor(readonly step: string) {
    super(`${step} timed out`);
  }
}

/** `promise`, or a rejection after `ms` (the abandoned promise's late rejection is swallowed). */
export function bounded<T>(promise: Promise<T>, ms: number, step: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(step)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Whether an error means the connection itself failed (rather than the directory answering with a result code). */
export function isConnectionFailure(error: unknown): boolean {
  return !(error instanceof ResultCodeError);
}

/**
 * Whether a failure on a reused connection means it had died while idle (worth one retry on a
 * fresh connection) rather than that the directory stopped answering (retrying would only double
 * the wait).
 */
export function isStaleConnection(error: unknown): boolean {
  if (error instanceof ResultCodeError || error instanceof Timeout) return false;
  return !(error instanceof Error && /timed out|timeout/i.test(error.message));
}

const TLS_REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate (set caFile to it, or to the CA that signed it)',
  SELF_SIGNED_CERT_IN_CHAIN: 'signed by an unknown CA (set caFile to the CA that signed it)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'signed by an unknown CA (set caFile to the CA that signed it)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'signed by an unknown CA (set caFile to the CA that signed it)',
  UNABLE_TO_GET_ISSUER_CERT: 'signed by an unknown CA (set caFile to the CA that signed it)',
  CERT_HAS_EXPIRED: 'certificate expired',
  CERT_NOT_YET_VALID: 'certificate not yet valid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'hostname mismatch',
  CERT_REVOKED: 'certificate revoked',
  CERT_SIGNATURE_FAILURE: 'certificate signature invalid',
};

/**
 * The IdentitySourceUnavailableError for a failure talking to `target` while doing `step`
 * (e.g. `service bind`, `user search`). The message names host:port and the cause, never a
 * credential or a typed user name.
 */
export function unavailable(target: LdapTarget, step: string, error: unknown): IdentitySourceUnavailableError {
  if (error instanceof IdentitySourceUnavailableError) return error;
  return new IdentitySourceUnavailableError(`ldap directory ${target.address}: ${step} failed: ${describe(target, error)}`, { cause: error });
}

function describe(target: LdapTarget, error: unknown): string {
  const seconds = `${target.timeoutMs / 1000} s`;
  if (error instanceof Timeout) {
    return error.step === 'connect' || error.step === 'starttls' ? `cannot connect to ${target.address} within ${seconds}` : `no answer within ${seconds}`;
  }
  if (error instanceof ResultCodeError) return `the directory answered ${error.name.replace(/Error$/, '')} (result code ${error.code})`;
  if (!(error instanceof Error)) return 'unknown error';
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const tlsReason = TLS_REASONS[code];
  if (tlsReason) {
    const detail = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? `: the certificate is not valid for ${target.host}` : '';
    return `TLS certificate refused: ${tlsReason}${detail}`;
  }
  if (/^ERR_SSL_|^ERR_TLS_|^CERT_|_CERT/.test(code)) return `TLS handshake failed (${code})`;
  if (code === 'ECONNREFUSED') return `cannot connect to ${target.address} (connection refused)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot connect to ${target.address} (host name not found)`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `cannot connect to ${target.address} (unreachable)`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return `connection to ${target.address} reset`;
  if (error.message === 'Connection timeout') return `cannot connect to ${target.address} within ${seconds}`;
  if (/Operation timed out/.test(error.message)) return `no answer within ${seconds}`;
  if (error.message === NO_RECONNECT || /Connection closed|Socket error|not established/.test(error.message)) return `connection to ${target.address} lost`;
  if (/unknown protocol|wrong version number|packet length too long/i.test(error.message)) return 'TLS handshake failed (is the port plain LDAP, or startTLS on an ldaps:// port?)';
  return 'malformed answer or protocol error';
}

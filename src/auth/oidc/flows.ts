import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthFlowRow, AuthFlowStore } from '../../metadata/auth-flows.ts';
import type { ExternalIdentity } from '../external.ts';
import { hashSecret, newSecret } from '../secrets.ts';
import type { AuthorizationExpectations, AuthorizationStart, DevicePoll, DeviceStart } from './client.ts';

/** What the flows need of the OpenID relying party (OidcClient in ./client.ts). */
export interface RelyingParty {
  begin(redirectUri: string): Promise<AuthorizationStart>;
  finish(callbackUrl: URL, expected: AuthorizationExpectations): Promise<ExternalIdentity>;
  startDevice(): Promise<DeviceStart>;
  pollDevice(deviceCode: string): Promise<DevicePoll>;
}

/** Why a flow step was refused without asking the provider: the flow's key is unknown, expired, used, or the proof is wrong. */
export class FlowError extends Error {
  override name = 'FlowError';
  /** `unknown`: no live flow of that key (never started, expired or used); `proof`: the CLI's verifier does not match; `busy`: too many flows open. */
  readonly kind: 'unknown' | 'proof' | 'busy';

  constructor(kind: FlowError['kind'], message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Where a browser sign-in started: the portal (a path to return to, and the hash of a random value
 * the starting browser keeps in a cookie: the callback must come from that browser, so nobody can
 * sign a victim's browser into the attacker's account by sending it a callback URL) or `berth
 * login --sso` (its loopback port and challenge: the code it gets is useless without the verifier).
 */
export type BrowserTarget = { kind: 'web'; returnTo: string; browser: string } | { kind: 'cli'; port: number; challenge: string };

/** The callback's outcome: the flow it belonged to, and the identity or the provider's refusal. */
export interface CallbackResult {
  target: BrowserTarget;
  /** The person the provider vouched for; absent when `error` is set. */
  identity?: ExternalIdentity;
  /** What finish() threw (OidcError, IdentitySourceUnavailableError…). */
  error?: unknown;
}

/** One device-flow poll, as the API answers it (`identity`: the provider just approved; onboard, then approve()). */
export type DeviceProgress =
  | { status: 'pending' | 'slow_down' | 'denied' | 'expired' }
  | { status: 'identity'; identity: ExternalIdentity }
  | { status: 'approved' };

/** A device flow as started for the CLI: `flow` is the id it polls with (the provider's device code stays here). */
export interface DeviceFlowStart {
  flow: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string;
  interval: number;
  expiresIn: number;
}

/** A user a flow signed in: the row's id (the flow ends with the user) and name. */
export interface FlowUser {
  userId: number;
  username: string;
  /** The user's credential generation at the sign-in: a credential ended since (Onboarding.revoke) voids the flow. */
  generation: number;
}

export interface OidcFlowsOptions {
  /**
   * The relying party, when it is ready: a provider unreachable at Berth's start is discovered at
   * the first sign-in instead (rejects with IdentitySourceUnavailableError meanwhile).
   */
  party: () => Promise<RelyingParty>;
  store: AuthFlowStore;
  /** The redirect URI registered at the provider (Berth's `/api/v1/auth/oidc/callback`). */
  redirectUri: string;
  /** How long a flow may take from start to its last step (default 10 minutes). */
  ttlMs?: number;
  /** Live flows at most (anonymous callers start them: a bound on what they can make Berth store). */
  maxOpen?: number;
  now?: () => number;
}

interface BrowserData {
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  returnTo?: string;
  browser?: string;
  port?: number;
  challenge?: string;
}

interface DeviceData {
  deviceCode: string;
  /** Seconds between provider polls (raised by 5 on each slow_down). */
  interval: number;
  /** ms: the provider is asked no sooner than this. */
  nextPollAt: number;
  /** Set once the provider approved and the person was onboarded. */
  user?: FlowUser;
}

/** A poll this much early still goes to the provider (timers and clocks differ by a little). */
const POLL_GRACE_MS = 250;

/** Flow kinds, the rows' `kind` column. */
const KIND = { browser: 'oidc-browser', code: 'oidc-cli-code', device: 'oidc-device' } as const;

/**
 * The sign-in flows through the OpenID provider, with their state in the `auth_flows` table so any
 * replica can take any step:
 * - browser (portal or `berth login --sso`): `begin` stores state → nonce, PKCE verifier and where
 *   to go afterwards, keyed by a hash of `state`; `callback` takes that row (single use) and finishes
 *   the code exchange;
 * - the CLI's one-time code (`issueCliCode` / `claimCliCode`): after a CLI browser sign-in, the
 *   CLI trades it, with the verifier of the S256 challenge it sent at the start, for a token;
 * - device (`startDevice` / `pollDevice`): the provider's device code stays in the row; the CLI
 *   polls with a random flow id, and polls sooner than the interval never reach the provider.
 *
 * Every flow expires `ttlMs` after its start (a CLI code: after the sign-in that made it; a device
 * flow sooner if the provider's code does) and is single-use; keys are stored as SHA-256 hashes
 * only. Methods throw FlowError for unknown, expired or used keys and a wrong verifier, and pass on
 * what the relying party throws (OidcError, IdentitySourceUnavailableError).
 */
export class OidcFlows {
  /** The redirect URI registered at the provider, where its answers arrive. */
  readonly redirectUri: string;
  private readonly party: () => Promise<RelyingParty>;
  private readonly store: AuthFlowStore;
  private readonly ttlMs: number;
  private readonly maxOpen: number;
  private readonly now: () => number;

  constructor(options: OidcFlowsOptions) {
    this.party = options.party;
    this.redirectUri = options.redirectUri;
    this.store = options.store;
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.maxOpen = options.maxOpen ?? 10_000;
    this.now = options.now ?? (() => Date.now());
  }

  /** Starts a browser sign-in; returns the provider URL to redirect to. FlowError `busy` when too many flows are open. */
  async begin(target: BrowserTarget): Promise<string> {
    const redirectUri = this.redirectUri;
    await this.roomForOne();
    const start = await (await this.party()).begin(redirectUri);
    const data: BrowserData = { nonce: start.nonce, codeVerifier: start.codeVerifier, redirectUri };
    if (target.kind === 'web') Object.assign(data, { returnTo: target.returnTo, browser: target.browser });
    else Object.assign(data, { port: target.port, challenge: target.challenge });
    await this.store.create(hashSecret(start.state), KIND.browser, JSON.stringify(data), this.now() + this.ttlMs);
    return start.url;
  }

  /**
   * Finishes the browser sign-in whose `state` the callback carries: the flow is used up whatever
   * the outcome. FlowError `unknown` when no live flow has that state; the provider's refusal or
   * unavailability comes back in `error` (with the flow's target, so the CLI can be told).
   */
  async callback(state: string, callbackUrl: URL, browser: string | undefined): Promise<CallbackResult> {
    const row = await this.store.take(hashSecret(state), KIND.browser, this.now());
    if (!row) throw new FlowError('unknown', 'this sign-in is unknown, expired or already finished: start it again');
    const data = parse<BrowserData>(row);
    if (data.browser !== undefined && !sameText(data.browser, browser ?? '')) throw new FlowError('proof', 'this sign-in was started in another browser: start it again here');
    const target: BrowserTarget = data.port !== undefined && data.challenge !== undefined ? { kind: 'cli', port: data.port, challenge: data.challenge } : { kind: 'web', returnTo: data.returnTo ?? '/', browser: data.browser ?? '' };
    try {
      const identity = await (await this.party()).finish(callbackUrl, { state, nonce: data.nonce, codeVerifier: data.codeVerifier, redirectUri: data.redirectUri });
      return { target, identity };
    } catch (error) {
      return { target, error };
    }
  }

  /** A one-time code for the CLI whose browser sign-in proved `user` (a fresh random value; stored hashed, tied to the CLI's challenge). */
  async issueCliCode(user: FlowUser, challenge: string): Promise<string> {
    const code = newSecret();
    await this.store.create(hashSecret(code), KIND.code, JSON.stringify({ challenge, user }), this.now() + this.ttlMs, user.userId);
    return code;
  }

  /**
   * Uses up the CLI's one-time `code` when `verifier` is the secret behind its S256 challenge;
   * returns the user and a function that puts the code back (when the token could not be made for
   * a reason the CLI can fix, a name clash). FlowError `unknown` for an unknown, expired or used
   * code, `proof` for a wrong verifier (the code is used up then too).
   */
  async claimCliCode(code: string, verifier: string): Promise<FlowUser & { restore: () => Promise<void> }> {
    const row = await this.store.take(hashSecret(code), KIND.code, this.now());
    if (!row || row.user_id === null) throw new FlowError('unknown', 'the code is unknown, expired or already used: run berth login again');
    const { challenge, user } = parse<{ challenge: string; user: FlowUser }>(row);
    if (!sameText(s256(verifier), challenge)) throw new FlowError('proof', 'the verifier does not match the challenge this sign-in started with');
    return { ...user, restore: () => this.restore(row) };
  }

  /** Starts a device sign-in at the provider; FlowError `busy` when too many flows are open. */
  async startDevice(): Promise<DeviceFlowStart> {
    await this.roomForOne();
    const start = await (await this.party()).startDevice();
    const flow = newSecret();
    const lifetime = Math.min(start.expiresIn * 1000, this.ttlMs);
    const data: DeviceData = { deviceCode: start.deviceCode, interval: start.interval, nextPollAt: this.now() + start.interval * 1000 - POLL_GRACE_MS };
    await this.store.create(hashSecret(flow), KIND.device, JSON.stringify(data), this.now() + lifetime);
    return {
      flow,
      userCode: start.userCode,
      verificationUri: start.verificationUri,
      verificationUriComplete: start.verificationUriComplete ?? start.verificationUri,
      interval: start.interval,
      expiresIn: Math.floor(lifetime / 1000),
    };
  }

  /**
   * One poll of the CLI. Sooner than the interval since the last provider request (or while
   * another poll of the flow is at the provider): `slow_down` without asking the provider. A flow
   * the provider refused or let expire is removed. FlowError `unknown` for an unknown, expired or
   * finished flow.
   */
  async pollDevice(flow: string): Promise<DeviceProgress> {
    const key = hashSecret(flow);
    const row = await this.store.find(key, KIND.device, this.now());
    if (!row) throw new FlowError('unknown', 'this device sign-in is unknown, expired or already finished: start it again');
    if (row.user_id !== null) return { status: 'approved' };
    const data = parse<DeviceData>(row);
    const now = this.now();
    if (now < data.nextPollAt) return { status: 'slow_down' };
    const next: DeviceData = { ...data, nextPollAt: now + data.interval * 1000 - POLL_GRACE_MS };
    const claimed = JSON.stringify(next);
    if (!(await this.store.update(key, row.data, claimed, null))) return { status: 'slow_down' };
    const answer = await (await this.party()).pollDevice(data.deviceCode);
    switch (answer.status) {
      case 'pending':
        return answer;
      case 'slow_down': {
        // RFC 8628 §3.5: every slow_down adds 5 seconds to the interval, for the rest of the flow.
        const slower: DeviceData = { ...next, interval: next.interval + 5, nextPollAt: this.now() + (next.interval + 5) * 1000 - POLL_GRACE_MS };
        await this.store.update(key, claimed, JSON.stringify(slower), null);
        return answer;
      }
      case 'denied':
      case 'expired':
        await this.store.remove(key);
        return answer;
      case 'done':
        return { status: 'identity', identity: answer.identity };
    }
  }

  /** Records that the device flow's person is `userId` (onboarded), so later polls need not ask the provider again. */
  async approveDevice(flow: string, user: FlowUser): Promise<void> {
    const key = hashSecret(flow);
    const row = await this.store.find(key, KIND.device, this.now());
    if (row) await this.store.update(key, row.data, JSON.stringify({ ...parse<DeviceData>(row), user }), user.userId);
  }

  /** Ends a device flow whose sign-in was refused after the provider approved it (onboarding said no). */
  async dropDevice(flow: string): Promise<void> {
    await this.store.remove(hashSecret(flow));
  }

  /**
   * Uses up an approved device flow; returns its user and a function that puts it back (a token
   * name clash the CLI retries). FlowError `unknown` when another poll used it first.
   */
  async claimDevice(flow: string): Promise<FlowUser & { restore: () => Promise<void> }> {
    const row = await this.store.take(hashSecret(flow), KIND.device, this.now());
    const user = row ? parse<DeviceData>(row).user : undefined;
    if (!row || row.user_id === null || user === undefined) throw new FlowError('unknown', 'this device sign-in is unknown, expired or already finished: start it again');
    return { ...user, restore: () => this.restore(row) };
  }

  private async restore(row: AuthFlowRow): Promise<void> {
    await this.store.create(row.id_hash, row.kind, row.data, row.expires_at, row.user_id);
  }

  private async roomForOne(): Promise<void> {
    if ((await this.store.sweep(this.now())) >= this.maxOpen) throw new FlowError('busy', 'too many sign-ins are in progress: try again in a few minutes');
  }
}

/** The S256 PKCE challenge of `verifier` (RFC 7636 §4.2): base64url of its SHA-256, 43 characters. */
export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** A fresh PKCE verifier (43 characters of the RFC 7636 alphabet), for the CLI. */
export function newVerifier(): string {
  return randomBytes(32).toString('base64url');
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// Rows are written by this module only; a row that does not parse is treated as unknown.
function parse<T>(row: AuthFlowRow): T {
  try {
    return JSON.parse(row.data) as T;
  } catch {
    throw new FlowError('unknown', 'this sign-in is unknown, expired or already finished: start it again');
  }
}

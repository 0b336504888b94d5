import { z } from 'zod';
import { RegistryError } from '../../domain/errors.ts';
import { IdentitySourceUnavailableError, type ExternalIdentity } from '../../auth/external.ts';
import { OidcError } from '../../auth/oidc/errors.ts';
import { FlowError, type FlowUser, type OidcFlows } from '../../auth/oidc/flows.ts';
import type { Onboarding } from '../../auth/onboarding.ts';
import type { UserRow } from '../../metadata/schema.ts';
import { hashSecret, newSecret } from '../../auth/secrets.ts';
import type { Context } from '../context.ts';
import { cookieValue, setCookie } from './authenticate.ts';
import { audit, conflict, iso, isoTime, notFound, requireAdmin, type ApiServices } from './common.ts';
import { issuePersonalToken, personalTokenName } from './personal-tokens.ts';
import { API_PREFIX, invalid, operation, type ApiResult, type Operation } from './route.ts';

/** Where the portal sends the browser to sign in through the provider. */
export const OIDC_LOGIN_PATH = `${API_PREFIX}/auth/oidc/login`;
/** Tokens made by `berth login --sso` / `--device` live this long (as the password login's). */
const CLI_TOKEN_DAYS = 90;

/** `?return=`: a path on this site — one leading `/`, not `//` (another host), no backslash, no whitespace or control characters. */
function sameSitePath(path: string): boolean {
  // eslint-disable-next-line no-control-regex
  if (!path.startsWith('/') || path.startsWith('//') || /[\\\s\u0000-\u001f\u007f]/.test(path)) return false;
  const base = new URL('http://berth.invalid');
  return new URL(path, base).origin === base.origin;
}

const loginQuery = z
  .object({
    return: z.string().max(1024).refine(sameSitePath, 'must be a path on this site: one leading "/", no "//", backslash or spaces').optional().describe('where the browser goes after signing in (default /)'),
    cli_port: z
      .string()
      .regex(/^\d{1,5}$/, 'must be a port number')
      .transform(Number)
      .refine((port) => port >= 1024 && port <= 65535, 'must be a port from 1024 to 65535')
      .optional()
      .describe('berth login --sso: the port of its listener on 127.0.0.1'),
    cli_challenge: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'must be the base64url SHA-256 (S256) of a verifier: 43 characters')
      .optional()
      .describe('berth login --sso: S256 challenge of the verifier it sends to /auth/oidc/cli/exchange'),
  })
  .refine((q) => (q.cli_port === undefined) === (q.cli_challenge === undefined), { message: 'cli_port and cli_challenge go together', path: ['cli_challenge'] })
  .refine((q) => q.cli_port === undefined || q.return === undefined, { message: 'a CLI sign-in has no return path', path: ['return'] });

// Only the parameters of an authorization response (RFC 6749 §4.1.2, RFC 9207's iss) reach the
// relying party, each bounded; anything else in the query is dropped.
const callbackQuery = z.object({
  state: z.string().min(1).max(512).optional(),
  code: z.string().min(1).max(2048).optional(),
  iss: z.string().max(2048).optional(),
  error: z.string().max(128).optional(),
  error_description: z.string().max(1024).optional(),
});

const base64url = (min: number, max: number, what: string) => z.string().min(min).max(max).regex(/^[A-Za-z0-9_-]+$/, `must be ${what}`);
const issuedToken = z.object({ username: z.string(), token: z.string(), name: z.string(), expiresAt: isoTime });

/**
 * Sign-in through the OpenID provider (`auth.mode: oidc`): the portal's browser flow, `berth login
 * --sso` (the browser flow ending at the CLI's loopback listener, then a one-time code traded for a
 * personal access token) and `berth login --device` (the device flow, polled through Berth). All
 * are `auth: 'none'`: they are how a person gets credentials. Every sign-in is audited (`login`,
 * detail.via `oidc`, `oidc-cli`, `oidc-device`), every refusal too (`login.failed`).
 */
export function ssoOperations(services: ApiServices): Operation[] {
  const { config, meta } = services;

  function sso(): { flows: OidcFlows; onboarding: Onboarding } {
    if (config.auth.mode !== 'oidc' || !services.oidc || !services.onboarding) throw notFound(`single sign-on is not configured on this server (auth.mode is ${config.auth.mode})`);
    return { flows: services.oidc, onboarding: services.onboarding };
  }

  async function signedIn(ctx: Context, onboarding: Onboarding, person: ExternalIdentity, via: string): Promise<UserRow> {
    const result = await onboarding.signIn(person, { client: ctx.origin.client, via });
    if (!result.user) throw new RegistryError('DENIED', `sign-in refused: ${result.reason}`);
    await audit(services, ctx, { kind: 'user', name: result.user.username, isAdmin: result.user.is_admin === 1 }, { action: 'login', resourceType: 'user', resource: result.user.username, detail: { via } });
    return result.user;
  }

  /** Audits a sign-in through the provider that failed before anyone was known (login.failed by anonymous). */
  async function signInFailed(ctx: Context, via: string, reason: string): Promise<void> {
    await meta.audit.record({ actor: 'anonymous', action: 'login.failed', resourceType: 'user', resource: '(oidc)', client: ctx.origin.client, success: false, detail: { source: 'oidc', via, reason } });
  }

  /** A refusal by the provider as an API error, audited; unavailability as 503; anything else is rethrown. */
  async function refusal(ctx: Context, err: unknown, via: string): Promise<RegistryError> {
    if (err instanceof IdentitySourceUnavailableError) {
      // The message only: the cause chain is the HTTP client's, with request details.
      ctx.log.warn({ reason: err.message, via }, 'oidc provider unavailable');
      return new RegistryError('UNAVAILABLE', `cannot sign in now: ${err.message}`, undefined, { headers: { 'Retry-After': '10' } });
    }
    if (err instanceof FlowError) return err.kind === 'busy' ? new RegistryError('TOOMANYREQUESTS', err.message) : new RegistryError('INVALID', err.message);
    if (!(err instanceof OidcError)) throw err;
    await signInFailed(ctx, via, err.message);
    return new RegistryError(err.kind === 'callback' ? 'INVALID' : 'DENIED', err.message);
  }

  /** Makes the CLI's token, putting the flow back when the name is taken (the CLI retries with another). */
  async function cliToken(ctx: Context, claimed: FlowUser & { restore: () => Promise<void> }, name: string): Promise<ApiResult> {
    const user = await meta.users.find(claimed.username);
    if (!user || user.id !== claimed.userId || user.credential_generation !== claimed.generation) {
      throw new RegistryError('DENIED', 'the account that signed in no longer exists or was signed out everywhere since: sign in again');
    }
    const issued = await issuePersonalToken(meta, user.id, name, Date.now() + CLI_TOKEN_DAYS * 86_400_000);
    if (!issued) {
      await claimed.restore();
      throw conflict(`you already have a token named "${name}" (revoked ones keep their name)`);
    }
    const identity = { kind: 'user' as const, name: user.username, isAdmin: user.is_admin === 1 };
    await audit(services, ctx, identity, { action: 'token.create', resourceType: 'token', resource: `${user.username}/${name}`, detail: { expiresAt: iso(issued.row.expires_at) } });
    return { body: { username: user.username, token: issued.token, name, expiresAt: iso(issued.row.expires_at) } };
  }

  return [
    operation({
      id: 'authConfig',
      method: 'GET',
      path: '/auth/config',
      tag: 'auth',
      summary: 'How people sign in to this server (the portal and the CLI read it)',
      auth: 'none',
      response: z.object({ mode: z.enum(['local', 'ldap', 'oidc']), oidc: z.object({ displayName: z.string(), loginPath: z.string() }).optional() }),
      handler: async () => ({
        body: {
          mode: config.auth.mode,
          ...(config.auth.mode === 'oidc' && config.auth.oidc ? { oidc: { displayName: config.auth.oidc.displayName, loginPath: OIDC_LOGIN_PATH } } : {}),
        },
      }),
    }),
    operation({
      id: 'testIdentitySource',
      method: 'POST',
      path: '/auth/test',
      tag: 'auth',
      summary: 'Ask the directory or OpenID provider now: does it answer, and (LDAP) how does it describe a person (system administrators)',
      description:
        'LDAP: connects, binds as the service account, reads baseDN, and with `username` looks the person up (no password needed) with their groups and admin flag. ' +
        'OIDC: reads the discovery document afresh. Always 200 once the request is valid: `ok` and `error` say what happened.',
      body: z.strictObject({ username: z.string().min(1).max(255).optional().describe('LDAP: a person to look up') }),
      response: z.object({
        mode: z.enum(['local', 'ldap', 'oidc']),
        ok: z.boolean(),
        target: z.string().optional().describe("the directory's URL or the provider's issuer"),
        elapsedMs: z.number(),
        error: z.string().optional(),
        deviceFlow: z.boolean().optional(),
        person: z
          .union([z.object({ found: z.literal(false) }), z.object({ found: z.literal(true), externalId: z.string(), username: z.string(), email: z.string().optional(), groups: z.array(z.string()), admin: z.boolean() })])
          .optional(),
      }),
      errors: [403],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        if (body.username !== undefined && config.auth.mode !== 'ldap') throw invalid([{ path: 'username', message: 'looking a person up is for auth.mode ldap (an OpenID provider answers only for the person signing in)' }]);
        const result = services.testIdentity ? await services.testIdentity(body.username) : { mode: config.auth.mode, ok: true, elapsedMs: 0 };
        ctx.log.info({ mode: result.mode, ok: result.ok, elapsedMs: result.elapsedMs }, 'identity source tested');
        return { body: result };
      },
    }),
    operation({
      id: 'oidcLogin',
      method: 'GET',
      path: '/auth/oidc/login',
      tag: 'auth',
      summary: 'Start signing in through the OpenID provider: redirects the browser there',
      description:
        'With `return`, the browser comes back to that path of this site signed in (session cookie). With `cli_port` and `cli_challenge` (berth login --sso), ' +
        'it comes back to http://127.0.0.1:<cli_port>/callback with a one-time code for /auth/oidc/cli/exchange. A sign-in must finish within 10 minutes.',
      auth: 'none',
      query: loginQuery,
      status: 302,
      errors: [404, 429, 503],
      handler: async ({ ctx, query }) => {
        const { flows } = sso();
        // A portal sign-in is tied to this browser by a random value in a short-lived cookie (see BrowserTarget).
        const browser = query.cli_port === undefined ? newSecret() : undefined;
        const target = browser === undefined ? { kind: 'cli' as const, port: query.cli_port!, challenge: query.cli_challenge! } : { kind: 'web' as const, returnTo: query.return ?? '/', browser: hashSecret(browser) };
        try {
          const location = await flows.begin(target);
          return { status: 302, headers: { Location: location, ...(browser ? { 'Set-Cookie': flowCookie(ctx, browser, FLOW_COOKIE_SECONDS) } : {}) } };
        } catch (err) {
          throw await refusal(ctx, err, target.kind === 'cli' ? 'oidc-cli' : 'oidc');
        }
      },
    }),
    operation({
      id: 'oidcCallback',
      method: 'GET',
      path: '/auth/oidc/callback',
      tag: 'auth',
      summary: 'Where the OpenID provider sends the browser back (the redirect URI to register there)',
      description:
        'Portal sign-in: sets the session cookie and redirects to the return path; a refusal redirects to /login?error=<code> (sso_denied, sso_expired, sso_state, ' +
        'sso_unavailable, sso_not_onboarded, sso_failed). CLI sign-in: redirects to the CLI\'s listener with a one-time code (or the refusal). Anything else refused answers JSON.',
      auth: 'none',
      query: callbackQuery,
      status: 302,
      errors: [403, 404, 503],
      handler: async ({ ctx, query }): Promise<ApiResult> => {
        const { flows, onboarding } = sso();
        if (query.state === undefined) throw invalid([{ path: 'state', message: 'required: this is not an answer to a sign-in Berth started' }]);
        const answer = new URL(flows.redirectUri);
        answer.search = '';
        for (const [name, value] of Object.entries(query)) if (value !== undefined) answer.searchParams.set(name, value);
        let result;
        const browser = cookieValue(ctx.req, FLOW_COOKIE);
        try {
          result = await flows.callback(query.state, answer, browser === undefined ? undefined : hashSecret(browser));
        } catch (err) {
          // The flow cookie says a portal started a sign-in in this browser: it goes back there.
          if (err instanceof FlowError && browser !== undefined) return toPortal(ctx, portalCode(err));
          if (err instanceof FlowError && err.kind === 'proof') throw invalid([{ path: 'state', message: 'belongs to a sign-in started in another browser: start the sign-in again here' }]);
          if (err instanceof FlowError) throw invalid([{ path: 'state', message: 'is unknown, expired or already used: start the sign-in again' }]);
          throw err;
        }
        const { target } = result;
        const via = target.kind === 'cli' ? 'oidc-cli' : 'oidc';
        try {
          if (result.error !== undefined) {
            const refused = await refusal(ctx, result.error, via);
            if (target.kind === 'web') return toPortal(ctx, portalCode(result.error));
            throw refused;
          }
          let user: UserRow;
          try {
            user = await signedIn(ctx, onboarding, result.identity!, via);
          } catch (err) {
            // Onboarding refused the person (unknown to Berth, or the name is another account's).
            if (target.kind === 'web' && err instanceof RegistryError && err.code === 'DENIED') return toPortal(ctx, 'sso_not_onboarded');
            throw err;
          }
          if (target.kind === 'web') {
            const session = await services.sessions.openFor(ctx, user, { uid: user.uid, cred: `sso:${user.credential_generation}` });
            return { status: 302, headers: { Location: target.returnTo, 'Set-Cookie': [session.setCookie, flowCookie(ctx, '', 0)] } };
          }
          const code = await flows.issueCliCode({ userId: user.id, username: user.username, generation: user.credential_generation }, target.challenge);
          return { status: 302, headers: { Location: `http://127.0.0.1:${target.port}/callback?code=${encodeURIComponent(code)}` } };
        } catch (err) {
          if (target.kind === 'web' || !(err instanceof RegistryError)) throw err;
          // The CLI waits at its listener: tell it, so it stops and prints the reason.
          const back = new URL(`http://127.0.0.1:${target.port}/callback`);
          back.searchParams.set('error', err.code.toLowerCase());
          back.searchParams.set('error_description', err.message.slice(0, 500));
          return { status: 302, headers: { Location: back.href } };
        }
      },
    }),
    operation({
      id: 'oidcCliExchange',
      method: 'POST',
      path: '/auth/oidc/cli/exchange',
      tag: 'auth',
      summary: 'berth login --sso: trade the one-time code (and the verifier of its challenge) for a personal access token',
      description: 'The code works once, within 10 minutes of the sign-in. A token name the user already has is a 409 and leaves the code usable for another name.',
      auth: 'none',
      body: z.strictObject({
        code: base64url(20, 256, 'the code Berth sent to the CLI listener'),
        verifier: z.string().min(43).max(128).regex(/^[A-Za-z0-9._~-]+$/, 'must be a PKCE verifier: 43 to 128 of A-Z a-z 0-9 - . _ ~'),
        tokenName: personalTokenName,
      }),
      response: issuedToken,
      errors: [403, 404, 409],
      handler: async ({ ctx, body }) => {
        const { flows } = sso();
        let claimed;
        try {
          claimed = await flows.claimCliCode(body.code, body.verifier);
        } catch (err) {
          if (!(err instanceof FlowError)) throw err;
          const field = err.kind === 'proof' ? 'verifier' : 'code';
          // A wrong verifier is someone else holding the code; unknown codes (noise anyone can send) are not audited.
          if (err.kind === 'proof') await signInFailed(ctx, 'oidc-cli', err.message);
          throw invalid([{ path: field, message: err.kind === 'proof' ? 'does not match the challenge this sign-in started with' : 'is unknown, expired or already used: run berth login again' }]);
        }
        return cliToken(ctx, claimed, body.tokenName);
      },
    }),
    operation({
      id: 'oidcDeviceStart',
      method: 'POST',
      path: '/auth/oidc/device',
      tag: 'auth',
      summary: 'berth login --device: start a device sign-in (a code the person enters at the provider)',
      description: 'Poll /auth/oidc/device/poll with `flow` every `interval` seconds; the provider\'s device code stays on the server.',
      auth: 'none',
      response: z.object({ flow: z.string(), userCode: z.string(), verificationUri: z.string(), verificationUriComplete: z.string(), interval: z.number().int(), expiresIn: z.number().int() }),
      errors: [403, 404, 429, 503],
      handler: async ({ ctx }) => {
        const { flows } = sso();
        try {
          return { body: await flows.startDevice() };
        } catch (err) {
          throw await refusal(ctx, err, 'oidc-device');
        }
      },
    }),
    operation({
      id: 'oidcDevicePoll',
      method: 'POST',
      path: '/auth/oidc/device/poll',
      tag: 'auth',
      summary: 'berth login --device: whether the person signed in yet; then, once, a personal access token',
      description:
        '`pending` or `slow_down` (a poll sooner than the interval) while waiting; `denied` or `expired` at the end; `done` with the token once. ' +
        'A token name the user already has is a 409 and the flow stays usable for another name.',
      auth: 'none',
      body: z.strictObject({ flow: base64url(20, 256, 'the flow id from /auth/oidc/device'), tokenName: personalTokenName }),
      response: z.union([z.object({ status: z.enum(['pending', 'slow_down', 'denied', 'expired']) }), issuedToken.extend({ status: z.literal('done') })]),
      errors: [403, 404, 409, 503],
      handler: async ({ ctx, body }) => {
        const { flows, onboarding } = sso();
        const via = 'oidc-device';
        try {
          const progress = await flows.pollDevice(body.flow);
          switch (progress.status) {
            case 'pending':
            case 'slow_down':
            case 'expired':
              return { body: { status: progress.status } };
            case 'denied':
              await signInFailed(ctx, via, 'denied at the provider');
              return { body: { status: 'denied' } };
            case 'identity': {
              let user: UserRow;
              try {
                user = await signedIn(ctx, onboarding, progress.identity, via);
              } catch (err) {
                await flows.dropDevice(body.flow);
                throw err;
              }
              await flows.approveDevice(body.flow, { userId: user.id, username: user.username, generation: user.credential_generation });
              break;
            }
            case 'approved':
              break;
          }
          const issued = await cliToken(ctx, await flows.claimDevice(body.flow), body.tokenName);
          return { body: { status: 'done', ...(issued.body as object) } };
        } catch (err) {
          if (err instanceof FlowError && err.kind === 'unknown') throw invalid([{ path: 'flow', message: 'is unknown, expired or already finished: start the sign-in again' }]);
          if (err instanceof OidcError) await flows.dropDevice(body.flow);
          throw await refusal(ctx, err, via);
        }
      },
    }),
  ];
}

/** The cookie that ties a portal sign-in to the browser that started it. */
const FLOW_COOKIE = 'berth_sso';

/**
 * Why a portal sign-in was refused, as the portal's sign-in page reads it from `/login?error=`: a
 * fixed code, never the provider's text or anything of the request (the audit log has the reason).
 * `sso_denied`: the person or the provider said no; `sso_expired`: the sign-in is unknown, expired
 * or already used; `sso_state`: the answer belongs to another sign-in or browser; `sso_unavailable`:
 * the provider could not be reached (or too many sign-ins are open); `sso_not_onboarded`: Berth has
 * no account this person may use; `sso_failed`: anything else the provider's answer failed.
 */
export const PORTAL_SIGN_IN_ERRORS = ['sso_denied', 'sso_expired', 'sso_state', 'sso_unavailable', 'sso_not_onboarded', 'sso_failed'] as const;
export type PortalSignInError = (typeof PORTAL_SIGN_IN_ERRORS)[number];

/** The portal's sign-in page with the refusal's code; the flow cookie is spent. */
function toPortal(ctx: Context, code: PortalSignInError): ApiResult {
  return { status: 302, headers: { Location: `/login?error=${code}`, 'Set-Cookie': flowCookie(ctx, '', 0) } };
}

/** The code of a refusal the flow reported (see PORTAL_SIGN_IN_ERRORS). */
function portalCode(err: unknown): PortalSignInError {
  if (err instanceof IdentitySourceUnavailableError) return 'sso_unavailable';
  if (err instanceof FlowError) return err.kind === 'busy' ? 'sso_unavailable' : err.kind === 'proof' ? 'sso_state' : 'sso_expired';
  if (err instanceof OidcError) return err.kind === 'callback' ? 'sso_state' : err.kind === 'provider' && err.providerError === 'access_denied' ? 'sso_denied' : 'sso_failed';
  return 'sso_failed';
}
const FLOW_COOKIE_SECONDS = 600;

/**
 * `Set-Cookie` for FLOW_COOKIE: only sent back to the callback; SameSite=Lax because the provider
 * sends the browser back with a top-level cross-site navigation (Strict would withhold it).
 */
function flowCookie(ctx: Context, value: string, maxAge: number): string {
  return setCookie(ctx, FLOW_COOKIE, value, { path: '/api/v1/auth/oidc', maxAge, sameSite: 'Lax' });
}

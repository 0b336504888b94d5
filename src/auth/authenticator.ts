import { randomBytes } from 'node:crypto';
import { RegistryError } from '../domain/errors.ts';
import type { Metadata } from '../metadata/index.ts';
import type { UserRow } from '../metadata/schema.ts';
import { robotCredential } from './credentials.ts';
import { IdentitySourceUnavailableError, type ExternalIdentity, type ExternalSource } from './external.ts';
import { ROBOT_PREFIX, type Identity } from './identity.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { TOKEN_PREFIX, hashSecret } from './secrets.ts';
import type { Onboarding, SignInContext as SignInVia } from './onboarding.ts';
import { LoginCache } from './login-cache.ts';
import { LoginThrottle, type ThrottleOptions } from './throttle.ts';

/** How long a checked local password is remembered, seconds. */
const CACHE_SECONDS = 60;
/** How many (credential, scope, client) token-login audits are remembered. */
const CACHE_MAX = 10_000;

/** Where a login attempt came from, for throttling and the audit log. */
export interface LoginContext {
  client: string;
  /** What the login is for, e.g. `token`, `registry`, `api`. */
  via: string;
  /** For token requests: the scopes asked for (a login is audited once per credential and scope per AUDIT_REPEAT_MS). */
  scope?: string;
}

/** The outcome of a login: the identity, or why not (in words fit for the caller). */
export type LoginResult = { identity: Identity; reason?: undefined } | { identity?: undefined; reason: string };

/** Said to every caller whose credentials do not check out (whether the name exists is not told). */
export const INVALID_CREDENTIALS = 'invalid username or password';

/** A successful token login with the same credential and scope is audited again only after this long. */
const AUDIT_REPEAT_MS = 5 * 60_000;

/** Which secrets a check accepts: any (password, personal access token, robot secret) or the password alone. */
export type SecretKind = 'any' | 'password';

/** A directory that checks the passwords of people who are not local users (LDAP: src/auth/ldap/). */
export interface PasswordDirectory {
  /** The person, or undefined when the name and password do not check out; throws IdentitySourceUnavailableError. */
  authenticate(username: string, password: string): Promise<ExternalIdentity | undefined>;
}

/** Sign-in through an identity source beside local users (`auth.mode` ldap or oidc). */
export interface ExternalLogins {
  /** Where this mode's people come from; users of another source (a mode changed since) are refused. */
  source: ExternalSource;
  /** LDAP mode: the directory that checks passwords of users who are not local. */
  directory?: PasswordDirectory;
  /**
   * The person as the source describes them now, for a user who comes with a token rather than
   * their password: the identity (still accepted: groups and admin flag are brought up to date),
   * null (no longer: every credential ends), undefined (the source cannot tell: accepted as is).
   * Throws IdentitySourceUnavailableError. Unset: never asked.
   */
  recheckPerson?: (user: UserRow) => Promise<ExternalIdentity | null | undefined>;
  onboarding: Onboarding;
  /** How often (ms) a user's groups are read again: at a directory password login, a personal access token's use, a refresh grant, a session. */
  resyncMs: number;
  /** Appended to the refusal of a password for an account without one here (OIDC mode: how those people log in instead). */
  passwordHint?: string;
}

/**
 * Checks `username` + secret credentials, whatever the secret is: a user's password, a user's
 * personal access token (`berth_pat_…`), or a robot's secret (`robot$…` names). Guessing is refused
 * by the LoginThrottle (429 TOOMANYREQUESTS with Retry-After, never a pause), and every failure is
 * written to the audit log. The identity returned carries the binding of the credential that proved
 * it (credentials.ts), which every token and session made from it names.
 *
 * A successful password check is remembered for a minute under a salted hash of the credentials
 * (never the password itself), so clients that send Basic credentials on every request do not pay
 * for argon2 each time; a password change (which bumps the user's credential generation, even from
 * another process) invalidates it at once. An unknown user name costs an argon2 check all the same,
 * so the answer's timing does not tell which names exist.
 */
export class Authenticator {
  /** Local passwords checked lately: the user's credential generation they were checked against. */
  private readonly cache = new LoginCache<number>(CACHE_SECONDS);
  private readonly throttle: LoginThrottle;
  private dummyHash: Promise<string> | undefined;
  /** When each (credential, scope, client) token login was last audited. */
  private readonly audited = new Map<string, number>();
  /** Directory re-checks in progress, by user name. */
  private readonly rechecks = new Map<string, Promise<boolean>>();

  constructor(private readonly meta: Metadata, throttle: Partial<ThrottleOptions> = {}, private readonly external?: ExternalLogins) {
    this.throttle = new LoginThrottle(throttle);
  }

  /**
   * The identity for valid credentials, or the reason they were refused. Throws TOOMANYREQUESTS
   * (with `Retry-After`) when the attempt is refused by the throttle; the secret is then not checked.
   * A reason more precise than INVALID_CREDENTIALS (a disabled or expired robot, an expired or
   * revoked personal access token) is given only to a caller who presented that very secret, so
   * it tells nobody else whether a name exists.
   */
  async authenticate(username: string, secret: string, context?: LoginContext, accept: SecretKind = 'any'): Promise<LoginResult> {
    const client = context?.client ?? 'unknown';
    const ticket = await this.throttle.admit(client, username);
    if ('retryAfterMs' in ticket) {
      const seconds = Math.max(1, Math.ceil(ticket.retryAfterMs / 1000));
      throw new RegistryError('TOOMANYREQUESTS', `too many failed logins: try again in ${seconds} s`, { retryAfterSeconds: seconds }, { headers: { 'Retry-After': String(seconds) } });
    }
    let result: LoginResult;
    try {
      const via = { client, via: context?.via ?? 'unknown' };
      result = accept === 'password' ? await this.password(username, secret, via) : await this.check(username, secret, via);
    } catch (err) {
      ticket.done(undefined);
      throw err;
    }
    ticket.done(result.identity !== undefined);
    const { identity } = result;
    if (identity) {
      // Credentials on /v2 and the API come with every request: only token requests and API
      // session logins are login events (failures are always recorded). One `docker push` asks
      // for tokens several times: the same credential, scope and client is recorded once a while.
      if (context && (context.via === 'session' || (context.via === 'token' && this.firstInAWhile(identity, context)))) {
        await this.meta.audit.record({ actor: identity.kind === 'anonymous' ? 'anonymous' : identity.name, action: 'login', resourceType: 'user', resource: username, client, success: true, detail: { via: context.via, ...(context.scope ? { scope: context.scope.slice(0, 500) } : {}) } });
      }
      return result;
    }
    await this.meta.audit.record({
      actor: username.slice(0, 255),
      action: 'login.failed',
      resourceType: 'user',
      resource: username.slice(0, 255),
      client,
      success: false,
      detail: { via: context?.via, failuresInWindow: this.throttle.failures(client, username), ...(result.reason !== INVALID_CREDENTIALS ? { reason: result.reason } : {}) },
    });
    return result;
  }

  /** Whether this token login has not been audited in the last AUDIT_REPEAT_MS (and notes it). */
  private firstInAWhile(identity: Identity, context: LoginContext): boolean {
    if (identity.kind === 'anonymous') return true;
    const key = `${identity.name}\0${identity.binding?.cred ?? ''}\0${context.client}\0${context.scope ?? ''}`;
    const now = Date.now();
    const last = this.audited.get(key);
    if (last !== undefined && now - last < AUDIT_REPEAT_MS) return false;
    if (this.audited.size >= CACHE_MAX) this.audited.clear();
    this.audited.set(key, now);
    return true;
  }

  private async check(username: string, secret: string, via: SignInVia): Promise<LoginResult> {
    if (username.startsWith(ROBOT_PREFIX)) return this.robot(username, secret);
    if (secret.startsWith(TOKEN_PREFIX)) return this.personalToken(username, secret, via);
    return this.password(username, secret, via);
  }

  private async robot(name: string, secret: string): Promise<LoginResult> {
    const robot = await this.meta.robots.find(name);
    if (!robot || robot.secret_hash !== hashSecret(secret)) return { reason: INVALID_CREDENTIALS };
    if (robot.disabled === 1) return { reason: `robot account "${robot.name}" is disabled: a project admin can enable it` };
    if (robot.expires_at !== null && Number(robot.expires_at) <= Date.now()) {
      return { reason: `robot account "${robot.name}" expired on ${new Date(Number(robot.expires_at)).toISOString()}: a project admin can extend it` };
    }
    return { identity: { kind: 'robot', name: robot.name, id: robot.id, binding: { cred: robotCredential(robot.secret_hash) } } };
  }

  private async personalToken(username: string, token: string, via: SignInVia): Promise<LoginResult> {
    const row = await this.meta.tokens.findByHash(hashSecret(token));
    if (!row || row.username !== username) return { reason: INVALID_CREDENTIALS };
    if (row.revoked === 1) return { reason: `personal access token "${row.name}" was revoked: create a new one` };
    if (row.expires_at !== null && Number(row.expires_at) <= Date.now()) {
      return { reason: `personal access token "${row.name}" expired on ${new Date(Number(row.expires_at)).toISOString()}: create a new one` };
    }
    // A directory user's token works while the directory still lists them (read again every resyncMs).
    const owner = await this.meta.users.find(row.username);
    if (owner && !(await this.recheck(owner, via))) return { reason: INVALID_CREDENTIALS };
    void this.meta.tokens.touch(row.id).catch(() => undefined);
    return { identity: { kind: 'user', name: row.username, isAdmin: (owner?.is_admin ?? row.is_admin) === 1, binding: { uid: row.uid, cred: `pat:${row.id}` } } };
  }

  /**
   * Whether a user of the identity source is still accepted by it (the directory still lists them;
   * the OpenID provider still refreshes their grant): asked again when their groups were last read
   * more than `resyncMs` ago, which also brings their groups and admin flag up to date; a person
   * no longer accepted loses every credential (Onboarding.revoke). True at once for local users;
   * false for users of a source not configured now. Throws UNAVAILABLE (503) when the source
   * cannot answer.
   */
  async recheck(user: UserRow, context: SignInVia): Promise<boolean> {
    if (user.source === 'local') return true;
    const external = this.external;
    if (!external || user.source !== external.source) return false;
    if (!external.recheckPerson || (user.groups_synced_at !== null && Date.now() - Number(user.groups_synced_at) < external.resyncMs)) return true;
    // A burst of requests of one user (a CI job's pulls) asks the source once.
    const running = this.rechecks.get(user.username);
    if (running) return running;
    const asked = this.askSource(user, external, external.recheckPerson, context).finally(() => this.rechecks.delete(user.username));
    this.rechecks.set(user.username, asked);
    return asked;
  }

  private async askSource(user: UserRow, external: ExternalLogins, recheckPerson: NonNullable<ExternalLogins['recheckPerson']>, context: SignInVia): Promise<boolean> {
    // One replica asks (another one's check is as good); the claim is given back if the source does not answer.
    const claimed = Date.now();
    const previous = user.groups_synced_at === null ? null : Number(user.groups_synced_at);
    if (!(await this.meta.users.claimResync(user.id, previous, claimed))) return true;
    let person: ExternalIdentity | null | undefined;
    try {
      person = await this.unlessUnavailable(recheckPerson(user));
    } catch (err) {
      await this.meta.users.releaseResync(user.id, claimed, previous).catch(() => undefined);
      throw err;
    }
    if (person === undefined) return true;
    if (person === null || person.externalId !== user.external_id) {
      const why = person ? 'the source now gives this name to another person' : user.source === 'ldap' ? 'the directory no longer lists this user' : 'the OpenID provider no longer accepts this user';
      await external.onboarding.revoke(user.username, context, why);
      return false;
    }
    return (await external.onboarding.signIn(person, context)).user !== undefined;
  }

  /** Checks the password with the directory and brings the user up to date (at most every resyncMs). */
  private async directoryPassword(username: string, password: string, user: UserRow | undefined, directory: PasswordDirectory, via: SignInVia): Promise<LoginResult> {
    const person = await this.unlessUnavailable(directory.authenticate(username, password));
    if (!person) return { reason: INVALID_CREDENTIALS };
    const fresh = user && user.external_id === person.externalId && user.groups_synced_at !== null && Date.now() - Number(user.groups_synced_at) < this.external!.resyncMs;
    let row = fresh ? user : undefined;
    if (!row) {
      const signedIn = await this.external!.onboarding.signIn(person, via);
      if (!signedIn.user) return { reason: signedIn.reason };
      row = signedIn.user;
    }
    return { identity: { kind: 'user', name: row.username, isAdmin: row.is_admin === 1, binding: { uid: row.uid, cred: `ldap:${row.credential_generation}` } } };
  }

  /** The identity source's answer; its unavailability as a 503 UNAVAILABLE naming the cause. */
  private async unlessUnavailable<T>(answer: Promise<T>): Promise<T> {
    try {
      return await answer;
    } catch (err) {
      if (err instanceof IdentitySourceUnavailableError) throw new RegistryError('UNAVAILABLE', `cannot check credentials: ${err.message}`, undefined, { headers: { 'Retry-After': '10' } });
      throw err;
    }
  }

  private async password(username: string, password: string, via: SignInVia): Promise<LoginResult> {
    const user = await this.meta.users.find(username);
    const directory = this.external?.directory;
    if (directory && (user === undefined || user.source === 'ldap')) return this.directoryPassword(username, password, user, directory, via);
    if (!user || user.source !== 'local') {
      // The same argon2 work as for a real user, so timing does not reveal which names exist.
      await verifyPassword(await this.dummy(), password);
      return { reason: this.external?.passwordHint ? `${INVALID_CREDENTIALS} (${this.external.passwordHint})` : INVALID_CREDENTIALS };
    }
    const identity: Identity = { kind: 'user', name: user.username, isAdmin: user.is_admin === 1, binding: { uid: user.uid, cred: `pw:${user.credential_generation}` } };
    if (this.cache.get(username, password) === user.credential_generation) return { identity };
    if (!(await verifyPassword(user.password_hash, password))) return { reason: INVALID_CREDENTIALS };
    this.cache.set(username, password, user.credential_generation);
    return { identity };
  }

  /** An argon2 hash of a random password, made once per process. */
  private dummy(): Promise<string> {
    return (this.dummyHash ??= hashPassword(randomBytes(24).toString('base64url')));
  }
}

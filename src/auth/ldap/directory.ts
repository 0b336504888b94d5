// The LDAP identity source: search-and-bind sign-in, the person's groups (nested where configured),
// look-ups for token refreshes and group members, and a start-up check. Searches run as the
// service account over a small pool; a user's password is only ever sent in a bind on a connection
// of its own, which is closed right after.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type tls from 'node:tls';
import { FilterParser, ResultCodeError, type Entry } from 'ldapts';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.ts';
import { type ExternalGroup, type ExternalIdentity, IdentitySourceUnavailableError, isUsername } from '../external.ts';
import { LoginCache } from '../login-cache.ts';
import { type LdapConnection, type LdapTarget, bounded, closeConnection, isConnectionFailure, isStaleConnection, openConnection, unavailable } from './connection.ts';
import {
  andEquals,
  anyMemberFilter,
  groupMembershipFilter,
  isAttributeName,
  isUnderDN,
  normalizeDN,
  userSearchFilter,
  wrapFilter,
} from './filters.ts';
import { Pool } from './pool.ts';

/** The parsed `auth.ldap` section. */
export type LdapConfig = NonNullable<Config['auth']['ldap']>;

/** How many levels the `search` walk of nested groups climbs at most. */
const MAX_NESTING = 10;
/** Group DNs per OR-filter in the nested walk, so a filter stays a reasonable size. */
const WALK_CHUNK = 50;
/** Result codes of a user bind that mean "these credentials do not sign in" rather than "the directory failed". */
const REFUSED_BIND = new Set([48 /* inappropriateAuthentication */, 49 /* invalidCredentials */, 53 /* unwillingToPerform */]);
const NO_SUCH_OBJECT = 32;
const INVALID_DN_SYNTAX = 34;

interface Found {
  dn: string;
  entry: Entry;
}

/**
 * One configured directory. Every method that talks to it rejects with
 * IdentitySourceUnavailableError when the directory cannot answer (down, timed out, TLS refused,
 * service bind refused, baseDN missing, an unexpected result code); nothing else escapes except
 * where stated. Safe for concurrent use.
 */
export class LdapDirectory {
  readonly #config: LdapConfig;
  readonly #log: Logger;
  readonly #target: LdapTarget;
  readonly #pool: Pool<LdapConnection>;
  readonly #cache: LoginCache<ExternalIdentity>;
  readonly #adminGroup: string | undefined;

  /**
   * Prepares (without connecting) a directory from the parsed `auth.ldap` section. Throws an Error
   * naming the option when caFile cannot be read, a filter does not parse, an attribute name is
   * not one, or adminGroup is not a DN. Logs one warning when `insecure` is on.
   */
  constructor(config: LdapConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    const url = new URL(config.url);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const secure = url.protocol === 'ldaps:';
    const port = url.port ? Number(url.port) : secure ? 636 : 389;
    const tlsOptions: tls.ConnectionOptions = { rejectUnauthorized: !config.insecure, host };
    // SNI carries host names only (RFC 6066); certificate checks still use `host`.
    if (!net.isIP(host)) tlsOptions.servername = host;
    if (config.caFile) {
      try {
        tlsOptions.ca = readFileSync(config.caFile, 'utf8');
      } catch (error) {
        throw new Error(`auth.ldap.caFile ${config.caFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (config.insecure) log.warn({ url: config.url }, 'ldap tls certificate verification is off (auth.ldap.insecure)');
    this.#target = {
      url: `${url.protocol}//${url.host}`,
      address: `${net.isIPv6(host) ? `[${host}]` : host}:${port}`,
      host,
      startTLS: config.startTLS,
      tls: tlsOptions,
      timeoutMs: config.timeout * 1000,
    };
    for (const [name, filter] of [['userFilter', config.userFilter], ['groupFilter', config.groupFilter]] as const) {
      try {
        FilterParser.parseString(wrapFilter(filter));
      } catch {
        throw new Error(`auth.ldap.${name} is not a valid LDAP filter (RFC 4515), e.g. (objectClass=person)`);
      }
    }
    for (const name of ['uidAttribute', 'emailAttribute', 'groupMembershipAttribute', 'groupNameAttribute'] as const) {
      if (!isAttributeName(config[name])) throw new Error(`auth.ldap.${name} is not an attribute name`);
    }
    if (config.adminGroup !== undefined) {
      this.#adminGroup = normalizeDN(config.adminGroup);
      if (!this.#adminGroup) throw new Error('auth.ldap.adminGroup must be the DN of a group, e.g. cn=registry-admins,ou=groups,dc=example,dc=com');
    }
    this.#cache = new LoginCache<ExternalIdentity>(config.cacheTTL, { nameOf: (person) => person.username });
    this.#pool = new Pool<LdapConnection>({
      size: config.poolSize,
      waitMs: this.#target.timeoutMs,
      open: () => this.#openServiceConnection(),
      healthy: (c) => c.usable(),
      close: (c) => closeConnection(c.client),
      onWaitTimeout: () => new IdentitySourceUnavailableError(`ldap directory ${this.#target.address}: no pooled connection free within ${config.timeout} s`),
      onClosed: () => new IdentitySourceUnavailableError('ldap directory closed'),
    });
  }

  /**
   * Search-and-bind sign-in. Resolves the person's identity with their current groups, or
   * undefined when the credentials do not sign in: empty password (refused before any bind: an
   * empty-password bind is an anonymous bind that succeeds), no entry or several entries for the
   * name under baseDN and userFilter, a refused bind (wrong password, locked account), or a
   * directory name that is not a usable Berth user name (logged as a warning). Successful sign-ins
   * are remembered for cacheTTL seconds and then answered without contacting the directory.
   * Rejects with IdentitySourceUnavailableError only.
   */
  async authenticate(username: string, password: string): Promise<ExternalIdentity | undefined> {
    if (password.length === 0 || !plausibleName(username)) return undefined;
    const cached = this.#cache.get(username, password);
    if (cached) return cached;
    const found = await this.#findUser(username);
    if (!found) return undefined;
    if (!(await this.#bindAs(found.dn, password))) return undefined;
    const identity = await this.#identityOf(found, username);
    if (identity) this.#cache.set(username, password, identity);
    return identity;
  }

  /** Drops the remembered sign-ins of this user (e.g. after an administrator disabled them in Berth). */
  forget(username: string): void {
    this.#cache.forget(username);
  }

  /**
   * The person as the directory describes them now, found with the service account (no bind as
   * them): undefined when no longer there, no longer matching userFilter, or ambiguous. Used to
   * re-check directory users on token refreshes. Rejects with IdentitySourceUnavailableError only.
   */
  async lookup(username: string): Promise<ExternalIdentity | undefined> {
    if (!plausibleName(username)) return undefined;
    const found = await this.#findUser(username);
    return found ? this.#identityOf(found, username) : undefined;
  }

  /**
   * Groups under groupBaseDN matching groupFilter whose DN is `nameOrDN` (when it is a DN under
   * groupBaseDN) or whose groupNameAttribute equals it; [] when none. Throws an Error when
   * groupBaseDN is not configured; rejects with IdentitySourceUnavailableError otherwise.
   */
  async findGroups(nameOrDN: string): Promise<ExternalGroup[]> {
    const base = this.#config.groupBaseDN;
    if (base === undefined) throw new Error('auth.ldap.groupBaseDN is not set: Berth does not read groups from the directory');
    if (!plausibleName(nameOrDN)) return [];
    const groups = await this.#searchGroups(andEquals(this.#config.groupFilter, this.#config.groupNameAttribute, nameOrDN));
    if (normalizeDN(nameOrDN) !== undefined && isUnderDN(nameOrDN, base)) {
      const entries = await this.#search('group search', nameOrDN, 'base', wrapFilter(this.#config.groupFilter), [this.#config.groupNameAttribute], {
        missingOk: true,
      });
      groups.push(...entries.map((e) => this.#toGroup(e)));
    }
    return dedupe(groups);
  }

  /**
   * Connects, binds as the service account and reads baseDN (and groupBaseDN), on a connection of
   * its own, for start-up and `doctor` checks. Rejects with IdentitySourceUnavailableError whose
   * message says what to fix: cannot connect to host:port, TLS certificate refused (and why),
   * service bind refused, baseDN not found.
   */
  async check(): Promise<void> {
    const conn = await this.#openServiceConnection();
    try {
      for (const [option, dn] of [['baseDN', this.#config.baseDN], ['groupBaseDN', this.#config.groupBaseDN]] as const) {
        if (dn === undefined) continue;
        try {
          await conn.client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] });
        } catch (error) {
          if (error instanceof ResultCodeError && (error.code === NO_SUCH_OBJECT || error.code === INVALID_DN_SYNTAX)) {
            throw new IdentitySourceUnavailableError(`ldap directory ${this.#target.address}: auth.ldap.${option} ${dn} not found`);
          }
          throw unavailable(this.#target, `reading ${option}`, error);
        }
      }
    } finally {
      await closeConnection(conn.client);
    }
  }

  /** Closes the pooled connections and forgets cached sign-ins; later calls reject. */
  async close(): Promise<void> {
    this.#cache.clear();
    await this.#pool.close();
  }

  async #openServiceConnection(): Promise<LdapConnection> {
    let conn: LdapConnection;
    try {
      conn = await openConnection(this.#target);
    } catch (error) {
      throw this.#fail('connect', error);
    }
    const { bindDN, bindPassword } = this.#config;
    if (bindDN === undefined || bindPassword === undefined) return conn;
    try {
      await conn.client.bind(bindDN, bindPassword);
      return conn;
    } catch (error) {
      await closeConnection(conn.client);
      if (error instanceof ResultCodeError && REFUSED_BIND.has(error.code)) {
        const refused = new IdentitySourceUnavailableError(
          `ldap directory ${this.#target.address}: service bind refused (invalid auth.ldap.bindDN or bindPassword, result code ${error.code})`,
        );
        this.#log.warn({ address: this.#target.address, code: error.code }, 'ldap service bind refused');
        throw refused;
      }
      throw this.#fail('service bind', error);
    }
  }

  /** Binds as the user on a fresh connection: true when accepted, false when the directory refuses the credentials. */
  async #bindAs(dn: string, password: string): Promise<boolean> {
    let conn: LdapConnection;
    try {
      conn = await openConnection(this.#target);
    } catch (error) {
      throw this.#fail('connect', error);
    }
    try {
      await bounded(conn.client.bind(dn, password), this.#target.timeoutMs, 'user bind');
      return true;
    } catch (error) {
      if (error instanceof ResultCodeError && REFUSED_BIND.has(error.code)) {
        this.#log.debug({ dn, code: error.code }, 'ldap bind refused');
        return false;
      }
      throw this.#fail('user bind', error);
    } finally {
      await closeConnection(conn.client);
    }
  }

  async #findUser(username: string): Promise<Found | undefined> {
    const c = this.#config;
    const entries = await this.#search('user search', c.baseDN, c.scope, userSearchFilter(c.userFilter, c.uidAttribute, username), [c.uidAttribute, c.emailAttribute], {
      sizeLimit: 2,
    });
    if (entries.length > 1) this.#log.warn({ baseDN: c.baseDN, entries: entries.map((e) => e.dn) }, 'ldap user name matches several entries');
    const only = entries.length === 1 ? entries[0] : undefined;
    return only ? { dn: only.dn, entry: only } : undefined;
  }

  async #identityOf(found: Found, typed: string): Promise<ExternalIdentity | undefined> {
    const c = this.#config;
    const names = values(found.entry, c.uidAttribute);
    // A multi-valued uid: take the value the search matched (case-insensitively), as stored.
    const fold = (s: string): string => s.toLowerCase().replace(/\s+/g, ' ').trim();
    const username = names.find((n) => fold(n) === fold(typed)) ?? names[0];
    if (username === undefined || !isUsername(username)) {
      this.#log.warn({ dn: found.dn, attribute: c.uidAttribute }, 'ldap user name is not usable in berth');
      return undefined;
    }
    const groups = await this.#groupsOf(c.groupMemberValue === 'uid' ? username : found.dn);
    const email = values(found.entry, c.emailAttribute)[0];
    const admin = this.#adminGroup !== undefined && groups.some((g) => normalizeDN(g.externalId) === this.#adminGroup);
    return { source: 'ldap', externalId: found.dn, username, ...(email ? { email } : {}), groups, admin };
  }

  /** The groups of a member: `member` is the user's DN, or their user name when groups list names (groupMemberValue uid). */
  async #groupsOf(member: string): Promise<ExternalGroup[]> {
    const c = this.#config;
    if (c.groupBaseDN === undefined) return [];
    const direct = await this.#searchGroups(groupMembershipFilter(c.groupFilter, c.groupMembershipAttribute, member, c.nestedGroups));
    if (c.nestedGroups !== 'search') return dedupe(direct);
    const seen = new Map<string, ExternalGroup>();
    let frontier: ExternalGroup[] = [];
    for (const g of direct) {
      const key = normalizeDN(g.externalId) ?? g.externalId;
      if (!seen.has(key)) {
        seen.set(key, g);
        frontier.push(g);
      }
    }
    for (let level = 0; level < MAX_NESTING && frontier.length > 0; level++) {
      const next: ExternalGroup[] = [];
      for (let i = 0; i < frontier.length; i += WALK_CHUNK) {
        const dns = frontier.slice(i, i + WALK_CHUNK).map((g) => g.externalId);
        for (const g of await this.#searchGroups(anyMemberFilter(c.groupFilter, c.groupMembershipAttribute, dns))) {
          const key = normalizeDN(g.externalId) ?? g.externalId;
          if (seen.has(key)) continue;
          seen.set(key, g);
          next.push(g);
        }
      }
      frontier = next;
    }
    return [...seen.values()];
  }

  async #searchGroups(filter: string): Promise<ExternalGroup[]> {
    const base = this.#config.groupBaseDN as string;
    const entries = await this.#search('group search', base, 'sub', filter, [this.#config.groupNameAttribute], { paged: true });
    return entries.map((e) => this.#toGroup(e));
  }

  #toGroup(entry: Entry): ExternalGroup {
    return { externalId: entry.dn, name: values(entry, this.#config.groupNameAttribute)[0] ?? entry.dn };
  }

  /** A search as the service account; a missing base is unavailable (a configuration error) unless `missingOk`. */
  async #search(
    step: string,
    base: string,
    scope: 'base' | 'one' | 'sub',
    filter: string,
    attributes: string[],
    options: { sizeLimit?: number; paged?: boolean; missingOk?: boolean } = {},
  ): Promise<Entry[]> {
    try {
      return await this.#pool.use(async (conn) => {
        const result = await conn.client.search(base, {
          scope,
          filter,
          attributes,
          ...(options.sizeLimit ? { sizeLimit: options.sizeLimit } : {}),
          ...(options.paged ? { paged: { pageSize: 500 } } : {}),
        });
        return result.searchEntries;
      }, isConnectionFailure, isStaleConnection);
    } catch (error) {
      if (error instanceof ResultCodeError && (error.code === NO_SUCH_OBJECT || error.code === INVALID_DN_SYNTAX)) {
        if (options.missingOk) return [];
        throw new IdentitySourceUnavailableError(`ldap directory ${this.#target.address}: ${step} failed: base ${base} not found`);
      }
      throw this.#fail(step, error);
    }
  }

  #fail(step: string, error: unknown): IdentitySourceUnavailableError {
    const wrapped = unavailable(this.#target, step, error);
    if (wrapped !== error) this.#log.warn({ address: this.#target.address, step, reason: wrapped.message }, 'ldap directory unavailable');
    return wrapped;
  }
}

/** Names that cannot be anyone's: empty, absurdly long. Refused without asking the directory. */
function plausibleName(name: string): boolean {
  return name.length > 0 && name.length <= 1024;
}

/** An attribute's values as strings, whatever case the directory spelled the attribute in. */
function values(entry: Entry, attribute: string): string[] {
  const wanted = attribute.toLowerCase();
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'dn' || key.toLowerCase() !== wanted) continue;
    const list = Array.isArray(value) ? value : [value];
    return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v))).filter((v) => v.length > 0);
  }
  return [];
}

function dedupe(groups: ExternalGroup[]): ExternalGroup[] {
  const byDN = new Map<string, ExternalGroup>();
  for (const g of groups) byDN.set(normalizeDN(g.externalId) ?? g.externalId, g);
  return [...byDN.values()];
}

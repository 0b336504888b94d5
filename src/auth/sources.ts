import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../config/overrides.ts';
import type { Metadata } from '../metadata/index.ts';
import type { UserRow } from '../metadata/schema.ts';
import type { Sealer } from './sealed.ts';
import type { ExternalLogins } from './authenticator.ts';
import { IdentitySourceUnavailableError, type ExternalGroup } from './external.ts';
import { LdapDirectory } from './ldap/directory.ts';
import { OidcClient, OidcError } from './oidc/client.ts';
import { OidcFlows } from './oidc/flows.ts';
import { Onboarding } from './onboarding.ts';

/** The sealing context of OpenID providers' refresh tokens kept in users.external_refresh. */
const REFRESH_CONTEXT = 'oidc refresh token';

/** The path of the OpenID Connect callback under Berth's URL; registered at the provider as the redirect URI. */
export const OIDC_CALLBACK_PATH = '/api/v1/auth/oidc/callback';

/** The identity sources `auth.mode` names, assembled: what the authenticator, the API and the CLI flows use. */
export interface IdentitySources {
  mode: Config['auth']['mode'];
  onboarding: Onboarding;
  /** For the Authenticator: sign-in beside local users (unset in local mode). */
  external?: ExternalLogins;
  /** LDAP mode: groups of the directory by name or DN (adding a group as a project member before anyone of it signed in). */
  directoryGroups?: (nameOrDN: string) => Promise<ExternalGroup[]>;
  /** OIDC mode: the sign-in flows (portal, CLI, device) through the provider. */
  oidcFlows?: OidcFlows;
  /** Checks at start that the source answers; a failure is logged (the local `admin` can still sign in), never fatal. */
  probe(): Promise<void>;
  /**
   * Asks the source now, for an administrator connecting Berth to it: whether it answers (and
   * why not), and with `username` (LDAP), how the directory describes that person. Never throws
   * for the source's failures: they are in `error`.
   */
  test(username?: string): Promise<IdentityTest>;
  close(): Promise<void>;
}

/** What a test of the identity source found. */
export interface IdentityTest {
  mode: Config['auth']['mode'];
  ok: boolean;
  /** The directory's URL or the provider's issuer. */
  target?: string;
  elapsedMs: number;
  /** Why not, in words naming the cause (never a password). */
  error?: string;
  /** OIDC: whether the provider offers the device flow (`berth login --device`). */
  deviceFlow?: boolean;
  /** LDAP with a user name: the person as the directory describes them now, or `found: false`. */
  person?: { found: false } | { found: true; externalId: string; username: string; email?: string; groups: string[]; admin: boolean };
}

/** Runs `check`, timing it; the source's unavailability (or refusal) becomes `error`. */
async function timed(mode: Config['auth']['mode'], target: string, check: (result: IdentityTest) => Promise<void>): Promise<IdentityTest> {
  const started = performance.now();
  const result: IdentityTest = { mode, ok: true, target, elapsedMs: 0 };
  try {
    await check(result);
  } catch (err) {
    result.ok = false;
    result.error = err instanceof Error ? err.message : String(err);
  }
  result.elapsedMs = Math.round(performance.now() - started);
  return result;
}

/**
 * Builds what `auth.mode` needs. Local users (the `admin` account among them) and robots always
 * work; LDAP users sign in with their directory password everywhere (Basic, `docker login`,
 * sessions), OIDC users through the provider (portal, `berth login --sso|--device`) and then with
 * personal access tokens. Throws ConfigError for a configuration that cannot work (an OIDC redirect
 * URI that cannot be known, an unreadable CA file).
 */
export function openIdentitySources(config: Config, meta: Metadata, log: Logger, forget: (username: string) => void, sealer: Sealer): IdentitySources {
  const { mode } = config.auth;
  let directory: LdapDirectory | undefined;
  const forgetEverywhere = (username: string) => {
    directory?.forget(username);
    forget(username);
  };
  const onboarding = new Onboarding(meta, {
    autoOnboard: (source) => source === 'ldap' || (config.auth.oidc?.autoOnboard ?? true),
    adminFromSource: (source) => (source === 'ldap' ? config.auth.ldap?.adminGroup : config.auth.oidc?.adminGroup) !== undefined,
    forget: forgetEverywhere,
    seal: (refreshToken) => sealer.seal(refreshToken, REFRESH_CONTEXT),
  });

  if (mode === 'ldap') {
    const settings = config.auth.ldap!;
    try {
      directory = new LdapDirectory(settings, log.child({ component: 'ldap' }));
    } catch (err) {
      throw new ConfigError(`auth.ldap: ${err instanceof Error ? err.message : String(err)}`);
    }
    const ldap = directory;
    return {
      mode,
      onboarding,
      external: {
        source: 'ldap',
        directory: ldap,
        // Still listed, as the same entry? (Onboarding compares the DN.)
        recheckPerson: async (user) => (await ldap.lookup(user.username)) ?? null,
        onboarding,
        resyncMs: settings.cacheTTL * 1000,
      },
      directoryGroups: (nameOrDN) => ldap.findGroups(nameOrDN),
      async probe() {
        try {
          await ldap.check();
          log.info({ url: settings.url }, 'ldap directory reachable');
        } catch (err) {
          log.error({ url: settings.url, err: err instanceof Error ? err.message : String(err) }, 'ldap directory check failed: directory users cannot sign in until it answers');
        }
      },
      test: (username) =>
        timed(mode, settings.url, async (result) => {
          await ldap.check();
          if (username === undefined) return;
          const person = await ldap.lookup(username);
          result.person = person ? { found: true, externalId: person.externalId, username: person.username, ...(person.email ? { email: person.email } : {}), groups: person.groups.map((g) => g.name), admin: person.admin } : { found: false };
        }),
      close: () => ldap.close(),
    };
  }

  if (mode === 'oidc') {
    const settings = config.auth.oidc!;
    const base = config.externalURL[0];
    if (!settings.redirectURL && !base) {
      throw new ConfigError(`auth.oidc needs redirectURL (e.g. https://registry.example.com${OIDC_CALLBACK_PATH}) or externalURL: the redirect URI registered at the provider must be known exactly`);
    }
    const redirectURI = settings.redirectURL ?? `${base}${OIDC_CALLBACK_PATH}`;
    let discovered: Promise<OidcClient> | undefined;
    const oidc = (): Promise<OidcClient> => {
      discovered ??= OidcClient.discover(settings, log.child({ component: 'oidc' })).catch((err: unknown) => {
        discovered = undefined;
        throw err instanceof IdentitySourceUnavailableError ? err : new IdentitySourceUnavailableError(`OpenID provider ${settings.issuer}: ${err instanceof Error ? err.message : String(err)}`);
      });
      return discovered;
    };
    return {
      mode,
      onboarding,
      external: {
        source: 'oidc',
        // Still accepted by the provider? One refresh-token grant with the token it sent at the last
        // sign-in; without one (the provider issues none) the provider cannot be asked.
        ...(settings.recheckInterval > 0
          ? {
              recheckPerson: async (user: UserRow) => {
                if (user.external_refresh === null || user.external_id === null) return undefined;
                let refreshToken: string;
                try {
                  refreshToken = sealer.open(user.external_refresh, REFRESH_CONTEXT);
                } catch {
                  return undefined; // sealed under another key (secrets.key changed): asked again at the next sign-in
                }
                try {
                  return await (await oidc()).refresh(refreshToken, user.external_id);
                } catch (err) {
                  if (err instanceof OidcError) {
                    log.info({ user: user.username, reason: err.message }, 'oidc provider refused the refresh');
                    return null;
                  }
                  throw err;
                }
              },
            }
          : {}),
        onboarding,
        resyncMs: settings.recheckInterval * 1000,
        passwordHint: `people who sign in with ${settings.displayName} use a personal access token as the password: berth login --sso`,
      },
      // The provider is discovered at the first need (and again after a failed discovery).
      oidcFlows: new OidcFlows({ party: oidc, store: meta.authFlows, redirectUri: redirectURI }),
      async probe() {
        try {
          await oidc();
          log.info({ issuer: settings.issuer, redirectURI }, 'openid provider discovered');
        } catch (err) {
          log.error({ issuer: settings.issuer, err: err instanceof Error ? err.message : String(err) }, 'openid provider discovery failed: it is tried again at the next sign-in');
        }
      },
      test: () =>
        timed(mode, settings.issuer, async (result) => {
          // Asked afresh (not the client discovered at start): the provider as it answers now.
          const fresh = await OidcClient.discover(settings, log.child({ component: 'oidc' }));
          try {
            result.deviceFlow = fresh.supportsDeviceFlow;
          } finally {
            await fresh.close();
          }
        }),
      async close() {
        const client = await discovered?.catch(() => undefined);
        await client?.close?.();
      },
    };
  }

  return { mode, onboarding, probe: async () => undefined, test: async () => ({ mode, ok: true, elapsedMs: 0 }), close: async () => undefined };
}

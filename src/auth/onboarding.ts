import type { Metadata } from '../metadata/index.ts';
import type { UserRow } from '../metadata/schema.ts';
import type { ExternalIdentity } from './external.ts';

/** Where a sign-in came from, for the audit log. */
export interface SignInContext {
  client: string;
  /** What the sign-in is for: `token`, `api`, `session`, `oidc`, `device`… */
  via: string;
}

/** The user a sign-in resolved to, or why it was refused (in words fit for the person signing in). */
export type SignInResult = { user: UserRow; reason?: undefined } | { user?: undefined; reason: string };

export interface OnboardingOptions {
  /** Whether a person unknown to Berth becomes a user at their first sign-in (`auth.oidc.autoOnboard`; LDAP: always). */
  autoOnboard: (source: ExternalIdentity['source']) => boolean;
  /** Drops what this replica (and, through the change feed, every other one) caches about a user. */
  forget: (username: string) => void;
  /**
   * Whether the source decides who is an administrator (an admin group is configured): then each
   * sign-in sets the user's admin flag; otherwise the flag stays what an administrator made it.
   */
  adminFromSource: (source: string) => boolean;
  /** Seals an OIDC provider's refresh token for storage (users.external_refresh). */
  seal: (refreshToken: string) => string;
}

/**
 * Turns a person an identity source vouched for into a Berth user: creates the user at the first
 * sign-in, ties the row to the person's id at the source, and makes the user's groups and admin flag
 * what the source says now. A change of groups or of the admin flag is written to the audit log
 * (who gained or lost which group, so which project roles) and dropped from every replica's caches.
 *
 * A name already taken by a local user or by another person of the source is refused, never
 * merged: whoever controls a directory entry must not become an existing account by naming it.
 */
export class Onboarding {
  constructor(private readonly meta: Metadata, private readonly options: OnboardingOptions) {}

  /** The user for `person`, created or brought up to date; or the reason the sign-in is refused. */
  async signIn(person: ExternalIdentity, context: SignInContext): Promise<SignInResult> {
    let user = await this.meta.users.find(person.username);
    const now = Date.now();
    if (user && user.source !== person.source) {
      return this.refuse(person, context, `the user name "${person.username}" belongs to a ${user.source} account in Berth: ask an administrator to rename one of them`);
    }
    if (user && user.external_id !== null && user.external_id !== person.externalId) {
      return this.refuse(person, context, `the user name "${person.username}" belongs to another ${person.source} identity in Berth: ask an administrator`);
    }
    let created = false;
    if (!user) {
      if (!this.options.autoOnboard(person.source)) {
        return this.refuse(person, context, `"${person.username}" is not a Berth user yet: ask an administrator to add them (berth user add ${person.username} --source ${person.source})`);
      }
      try {
        user = await this.meta.users.createExternal({ username: person.username, source: person.source, externalId: person.externalId, email: person.email ?? null, isAdmin: this.adminManaged(person.source) && person.admin });
        created = true;
      } catch {
        // Two first sign-ins at once (two replicas): the other created the row.
        user = await this.meta.users.find(person.username);
        if (!user || user.source !== person.source || (user.external_id !== null && user.external_id !== person.externalId)) {
          return this.refuse(person, context, `the user name "${person.username}" was taken at the same moment: try again`);
        }
      }
    }
    const groups = await this.meta.groups.upsert(person.source, person.groups);
    const change = await this.meta.groups.setUserGroups(user.id, groups.map((g) => g.id));
    const wasAdmin = user.is_admin === 1;
    const admin = this.adminManaged(person.source) ? person.admin : wasAdmin;
    await this.meta.users.recordSignIn(user.id, {
      externalId: person.externalId,
      email: person.email ?? null,
      isAdmin: admin,
      at: now,
      ...(person.refreshToken !== undefined ? { externalRefresh: this.options.seal(person.refreshToken) } : {}),
    });
    const adminChanged = !created && wasAdmin !== admin;
    if (created) {
      await this.meta.audit.record({
        actor: user.username,
        action: 'user.onboard',
        resourceType: 'user',
        resource: user.username,
        client: context.client,
        success: true,
        detail: { source: person.source, via: context.via, admin: user.is_admin === 1, groups: groups.map((g) => g.name).slice(0, 100) },
      });
    } else if (change.added.length > 0 || change.removed.length > 0 || adminChanged) {
      await this.meta.audit.record({
        actor: user.username,
        action: 'user.groups',
        resourceType: 'user',
        resource: user.username,
        client: context.client,
        success: true,
        detail: {
          source: person.source,
          via: context.via,
          added: change.added.map((g) => g.name).slice(0, 100),
          removed: change.removed.map((g) => g.name).slice(0, 100),
          ...(adminChanged ? { admin } : {}),
        },
      });
    }
    if (created || adminChanged || change.added.length > 0 || change.removed.length > 0) this.options.forget(user.username);
    return { user: (await this.meta.users.find(user.username)) ?? user };
  }

  /** Whether users of `source` get their admin flag from it (an admin group is configured): an administrator cannot set it by hand then. */
  adminManaged(source: string): boolean {
    return source !== 'local' && this.options.adminFromSource(source);
  }

  /**
   * For a person the source no longer lists (removed, disabled, filtered out): ends every credential
   * they hold in Berth and empties their groups. The user row stays (audit, ownership); signing in
   * again when the source lists them again works.
   */
  async revoke(username: string, context: SignInContext, why: string): Promise<void> {
    const user = await this.meta.users.find(username);
    if (!user || user.source === 'local') return;
    await this.meta.users.bumpGeneration(username);
    await this.meta.groups.setUserGroups(user.id, []);
    await this.meta.audit.record({ actor: 'system', action: 'user.revoke', resourceType: 'user', resource: username, client: context.client, success: true, detail: { source: user.source, via: context.via, why } });
    this.options.forget(username);
  }

  private async refuse(person: ExternalIdentity, context: SignInContext, reason: string): Promise<SignInResult> {
    await this.meta.audit.record({
      actor: person.username,
      action: 'login.failed',
      resourceType: 'user',
      resource: person.username,
      client: context.client,
      success: false,
      detail: { source: person.source, via: context.via, reason },
    });
    return { reason };
  }
}

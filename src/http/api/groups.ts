// `/groups`: the groups of the identity sources (LDAP groups, OIDC groups-claim values) as Berth
// knows them, for administrators: read only, since the sources own them. Also how a group named
// by an administrator (for a project role) is found, or learnt from its source.
import { z } from 'zod';
import { IdentitySourceUnavailableError, type ExternalGroup } from '../../auth/external.ts';
import { RegistryError } from '../../domain/errors.ts';
import type { Metadata } from '../../metadata/index.ts';
import type { GroupRow } from '../../metadata/schema.ts';
import { conflict, iso, isoTime, notFound, pageOf, pageQuery, paged, requireAdmin, window, type ApiServices } from './common.ts';
import { invalid, operation, type Operation } from './route.ts';

/** The sources groups come from. */
export const GROUP_SOURCES = ['ldap', 'oidc'] as const;
export type GroupSource = (typeof GROUP_SOURCES)[number];

/** Most members a group's view lists (the count says how many there are). */
const MAX_SHOWN_MEMBERS = 1000;

/**
 * A group as an administrator names it: a name (an OIDC groups-claim value, an LDAP group's name
 * attribute) or an LDAP group's DN. Free text from the source, so only what would garble a log
 * line, a table or a terminal is refused — and path-like traversal, which no group is named.
 */
export const groupName = z
  .string()
  .min(1)
  .max(1024, 'at most 1024 characters')
  // eslint-disable-next-line no-control-regex
  .refine((name) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name), 'must not contain control characters')
  .refine((name) => name.trim() === name, 'must not start or end with spaces')
  .refine((name) => !/(^|[/\\])\.\.([/\\]|$)/.test(name), 'must not contain ".." path segments')
  .describe('a group name, or an LDAP group DN');

/** A group's numeric id in a path. */
export const groupId = z.coerce.number().int().min(1).max(2_147_483_647).describe('the group id (see GET /groups)');

/** `name` quoted for a message: JSON-escaped and cut short (names are free text from the sources). */
export function shown(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
}

const groupSummary = z.object({ id: z.number().int(), name: z.string(), source: z.string(), externalId: z.string().describe('LDAP: the DN; OIDC: the claim value'), createdAt: isoTime });

function summary(row: GroupRow) {
  return { id: row.id, name: row.name, source: row.source, externalId: row.external_id, createdAt: iso(row.created_at)! };
}

/** The several groups a name could mean, for a 409 that lets the caller pick. */
function ambiguous(name: string, choices: { source: string; externalId: string; id?: number }[]): RegistryError {
  const listed = choices.slice(0, 20).map((c) => `${c.source} ${shown(c.externalId)}${c.id !== undefined ? ` (id ${c.id})` : ''}`);
  return conflict(`several groups are named ${shown(name)}: ${listed.join(', ')}; name one by its LDAP DN, or give "source"`, { choices: choices.slice(0, 100) });
}

/**
 * The group an administrator means by `name` (a name or an LDAP DN), optionally of one `source`:
 * one group Berth knows by that name or DN; else, with `auth.mode` oidc, a new OIDC group (a
 * claim value is its own id); with `auth.mode` ldap, the group the directory finds (remembered).
 * Throws NOT_FOUND when there is none (or `auth.mode` is local), CONFLICT naming the choices when
 * the name is ambiguous, UNAVAILABLE when the directory cannot answer.
 */
export async function resolveGroup(services: ApiServices, name: string, source?: GroupSource): Promise<GroupRow> {
  const { meta, config } = services;
  const mode = config.auth.mode;
  const known = new Map<number, GroupRow>();
  for (const row of await meta.groups.byName(name)) known.set(row.id, row);
  if (source !== 'oidc' && name.includes('=')) {
    const dn = await meta.groups.byExternalId('ldap', name);
    if (dn) known.set(dn.id, dn);
  }
  const found = [...known.values()].filter((g) => source === undefined || g.source === source);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw ambiguous(name, found.map((g) => ({ source: g.source, externalId: g.external_id, id: g.id })));
  if (mode === 'local') throw notFound(`no group ${shown(name)}: groups come from LDAP or OIDC; auth.mode is local`);
  if (source !== undefined && source !== mode) throw notFound(`no ${source} group ${shown(name)} is known to Berth, and auth.mode is ${mode}: Berth cannot ask ${source === 'ldap' ? 'a directory' : 'an OpenID provider'}`);
  if (mode === 'oidc') {
    // Only what a groups claim could carry (src/auth/oidc/claims.ts keeps at most 255 characters).
    if (name.length > 255) throw invalid([{ path: 'group', message: 'an OIDC group name has at most 255 characters' }]);
    return (await meta.groups.upsert('oidc', [{ externalId: name, name }]))[0]!;
  }
  if (!services.directoryGroups) throw new RegistryError('UNAVAILABLE', 'the LDAP directory is not connected: groups cannot be looked up');
  let answer: ExternalGroup[];
  try {
    answer = await services.directoryGroups(name);
  } catch (err) {
    if (err instanceof IdentitySourceUnavailableError) throw new RegistryError('UNAVAILABLE', err.message);
    throw err;
  }
  if (answer.length === 0) throw notFound(`no group ${shown(name)} in the directory`);
  if (answer.length > 1) throw ambiguous(name, answer.map((g) => ({ source: 'ldap', externalId: g.externalId })));
  return (await meta.groups.upsert('ldap', answer))[0]!;
}

/** `/groups`: the groups Berth knows, their members and projects (system administrators). */
export function groupOperations(services: ApiServices): Operation[] {
  const { meta } = services;
  return [
    operation({
      id: 'listGroups',
      method: 'GET',
      path: '/groups',
      tag: 'groups',
      summary: 'Groups of the identity sources, with member counts (administrators)',
      description: 'Groups come from LDAP or OIDC: a group is known once a member signed in or an administrator named it as a project member.',
      query: z.object({
        q: z.string().max(255).optional().describe('substring of the group name'),
        source: z.enum(GROUP_SOURCES).optional().describe('only groups of this source'),
        ...pageQuery,
      }),
      response: pageOf(groupSummary.extend({ members: z.number().int().describe('users in the group, as of their last sign-in') })),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        await requireAdmin(services, identity);
        const page = await meta.groups.list({ ...(query.source ? { source: query.source } : {}), ...(query.q ? { nameLike: query.q } : {}), ...window(query) });
        return paged(ctx, query, page.items.map((g) => ({ ...summary(g), members: g.members })), page.total);
      },
    }),
    operation({
      id: 'getGroup',
      method: 'GET',
      path: '/groups/{id}',
      tag: 'groups',
      summary: 'A group with its members and the projects where it has a role (administrators)',
      params: z.object({ id: groupId }),
      response: groupSummary.extend({
        memberCount: z.number().int(),
        members: z.array(z.object({ username: z.string(), email: z.string().nullable(), lastLoginAt: isoTime.nullable() })).describe(`by name, at most ${MAX_SHOWN_MEMBERS}`),
        projects: z.array(z.object({ project: z.string(), role: z.string(), createdAt: isoTime })),
      }),
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        await requireAdmin(services, identity);
        const row = await meta.groups.get(params.id);
        if (!row) throw notFound(`group ${params.id} not found`);
        const [members, projects] = await Promise.all([meta.groups.members(row.id, MAX_SHOWN_MEMBERS), meta.groups.projects(row.id)]);
        return {
          body: {
            ...summary(row),
            memberCount: members.total,
            members: members.items.map((m) => ({ username: m.username, email: m.email, lastLoginAt: iso(m.last_login_at) })),
            projects: projects.map((p) => ({ project: p.name, role: p.role, createdAt: iso(p.created_at)! })),
          },
        };
      },
    }),
  ];
}

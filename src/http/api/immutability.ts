import { z } from 'zod';
import { MAX_PATTERN_LENGTH, patternProblem, type Selector } from '../../domain/patterns.ts';
import type { Identity } from '../../auth/identity.ts';
import { MAX_IMMUTABILITY_RULES, type RuleChange, type StoredImmutabilityRule } from '../../metadata/immutability.ts';
import type { ProjectRow } from '../../metadata/schema.ts';
import { audit, conflict, iso, isoTime, notFound, pageOf, pageQuery, paged, projectAccess, projectName, slice, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** A glob, refused (naming the field, never echoing it) when `patternProblem` finds fault with it. */
const pattern = z
  .string()
  .superRefine((value, ctx) => {
    const problem = patternProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe(`a glob of at most ${MAX_PATTERN_LENGTH} characters: * (not /), ** (anything), ? (one character), {a,b} (one of)`);
const exclude = z.boolean().describe('true: the rule covers what does NOT match the pattern');
const selectorIn = z.strictObject({ pattern, exclude: exclude.optional() });
const selectorPatch = z.strictObject({ pattern: pattern.optional(), exclude: exclude.optional() });
const selectorOut = z.object({ pattern: z.string(), exclude: z.boolean() });
const rule = z.object({
  id: z.number().int(),
  repositories: selectorOut.describe("matched against the repository's path within the project (team/app/web → app/web)"),
  tags: selectorOut,
  disabled: z.boolean(),
  createdBy: z.string().nullable(),
  createdAt: isoTime,
});
const projectParam = z.object({ project: projectName });
const ruleParams = z.object({ project: projectName, id: z.string().regex(/^[1-9][0-9]{0,14}$/, 'a rule id: a positive whole number').describe('the rule id') });

function view(r: StoredImmutabilityRule) {
  return { id: r.id, repositories: { ...r.repositories }, tags: { ...r.tags }, disabled: r.disabled, createdBy: r.createdBy, createdAt: iso(r.createdAt) };
}

/** What an audit record says of a rule. */
function described(r: StoredImmutabilityRule): Record<string, unknown> {
  return { repositories: { ...r.repositories }, tags: { ...r.tags }, disabled: r.disabled };
}

/**
 * `/projects/{project}/immutability`: the project's tag immutability rules. Anyone who sees the
 * project reads them (a refused push names its rule anyway); project administrators — and system
 * administrators — change them (`project.update`: no robot holds it).
 */
export function immutabilityOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  /** The project and rule `id` of it; a rule of another project is answered like one that does not exist. */
  async function find(identity: Identity, params: z.output<typeof ruleParams>): Promise<{ project: ProjectRow; rule: StoredImmutabilityRule }> {
    const { project } = await projectAccess(services, identity, params.project, 'project.update');
    const found = await meta.immutability.find(project.id, Number(params.id));
    if (!found) throw notFound(`immutability rule ${params.id} not found in project "${project.name}"`);
    return { project, rule: found };
  }

  /** The rule a change produced, or the refusal that names why there is none. */
  function changed(project: ProjectRow, change: RuleChange): StoredImmutabilityRule {
    if ('rule' in change) return change.rule;
    if (change.refused === 'limit') throw conflict(`project "${project.name}" has ${MAX_IMMUTABILITY_RULES} immutability rules, the most it may have: change or delete one`);
    throw conflict(`project "${project.name}" has a rule with these repository and tag selectors already`);
  }

  const fullSelector = (s: { pattern: string; exclude?: boolean | undefined }): Selector => ({ pattern: s.pattern, exclude: s.exclude ?? false });

  return [
    operation({
      id: 'listImmutabilityRules',
      method: 'GET',
      path: '/projects/{project}/immutability',
      tag: 'immutability',
      summary: "The project's tag immutability rules, oldest first (project.read)",
      params: projectParam,
      query: z.object(pageQuery),
      response: pageOf(rule),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const { project } = await projectAccess(services, identity, params.project, 'project.read');
        const all = await meta.immutability.list(project.id);
        return paged(ctx, query, slice(all, query).map(view), all.length);
      },
    }),
    operation({
      id: 'createImmutabilityRule',
      method: 'POST',
      path: '/projects/{project}/immutability',
      tag: 'immutability',
      summary: `Add a rule (project.update): tags it covers can be pushed once and never moved or deleted; at most ${MAX_IMMUTABILITY_RULES} per project`,
      description:
        'A tag is immutable when an enabled rule selects both its repository and the tag. Pushing the digest it has again succeeds; ' +
        'pushing another digest to it, deleting it, deleting its artifact or its repository is refused with 403 DENIED naming the rule.',
      params: projectParam,
      body: z.strictObject({
        repositories: selectorIn.optional().describe('default: every repository of the project (**)'),
        tags: selectorIn,
        disabled: z.boolean().optional(),
      }),
      status: 201,
      response: rule,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params, body }) => {
        const { project } = await projectAccess(services, identity, params.project, 'project.update');
        const created = changed(
          project,
          await meta.immutability.add(project.id, {
            repositories: body.repositories ? fullSelector(body.repositories) : { pattern: '**', exclude: false },
            tags: fullSelector(body.tags),
            disabled: body.disabled ?? false,
            createdBy: identity.kind === 'anonymous' ? null : identity.name,
          }),
        );
        await audit(services, ctx, identity, { action: 'immutability.create', resourceType: 'immutability-rule', resource: String(created.id), project: project.name, detail: described(created) });
        return { status: 201, body: view(created) };
      },
    }),
    operation({
      id: 'updateImmutabilityRule',
      method: 'PATCH',
      path: '/projects/{project}/immutability/{id}',
      tag: 'immutability',
      summary: "Change a rule's patterns, or disable / enable it (project.update)",
      params: ruleParams,
      body: z.strictObject({ repositories: selectorPatch.optional(), tags: selectorPatch.optional(), disabled: z.boolean().optional() }),
      response: rule,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params, body }) => {
        const { project, rule: before } = await find(identity, params);
        const merge = (current: Selector, patch: { pattern?: string | undefined; exclude?: boolean | undefined } | undefined): Selector | undefined =>
          patch === undefined ? undefined : { pattern: patch.pattern ?? current.pattern, exclude: patch.exclude ?? current.exclude };
        const changes = {
          ...(body.repositories ? { repositories: merge(before.repositories, body.repositories)! } : {}),
          ...(body.tags ? { tags: merge(before.tags, body.tags)! } : {}),
          ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
        };
        if (Object.keys(changes).length === 0) return { body: view(before) };
        const change = await meta.immutability.update(project.id, before.id, changes);
        // Deleted meanwhile by someone else.
        if (change === undefined) throw notFound(`immutability rule ${before.id} not found in project "${project.name}"`);
        const after = changed(project, change);
        await audit(services, ctx, identity, {
          action: 'immutability.update',
          resourceType: 'immutability-rule',
          resource: String(after.id),
          project: project.name,
          detail: { ...described(after), previous: described(before) },
        });
        return { body: view(after) };
      },
    }),
    operation({
      id: 'deleteImmutabilityRule',
      method: 'DELETE',
      path: '/projects/{project}/immutability/{id}',
      tag: 'immutability',
      summary: 'Delete a rule (project.update); the tags it covered become mutable again',
      params: ruleParams,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const { project, rule: before } = await find(identity, params);
        if (!(await meta.immutability.delete(project.id, before.id))) throw notFound(`immutability rule ${before.id} not found in project "${project.name}"`);
        await audit(services, ctx, identity, { action: 'immutability.delete', resourceType: 'immutability-rule', resource: String(before.id), project: project.name, detail: described(before) });
        return { status: 204 };
      },
    }),
  ];
}

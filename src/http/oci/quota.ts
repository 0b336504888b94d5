import { identityName } from '../../auth/identity.ts';
import { QUOTA_EXCEEDED_ACTION } from '../../registry/audit.ts';
import type { Registry } from '../../registry/index.ts';
import { QuotaExceededError } from '../../registry/quota.ts';
import type { Context, Route } from '../context.ts';

/**
 * Makes every quota refusal among `routes` explain itself. The client's answer stays 403 DENIED
 * with the refusal's message — the same code as a missing permission, so the access log's error
 * code alone reads like a role problem. Each refusal therefore puts its figures on the request's
 * access-log line (`diagnosis`, code `quota-exceeded`, read by `berth logs explain`) and writes an
 * audit event (`quota.exceeded`, unsuccessful) and an outbox event of the same type, wherever in a
 * push it happened: a blob upload completed, a monolithic push, a mount, a manifest.
 */
export function explainQuotaRefusals(routes: Route[], registry: Pick<Registry, 'audit'>): Route[] {
  return routes.map((route) => ({
    ...route,
    handler: async (ctx, params) => {
      try {
        await route.handler(ctx, params);
      } catch (err) {
        noteRefusal(ctx, err, registry, route.name, params);
        throw err;
      }
    },
  }));
}

/** Records `err` in the log line and the audit log if it is a quota refusal; never throws. */
function noteRefusal(ctx: Context, err: unknown, registry: Pick<Registry, 'audit'>, routeName: string, params: string[]): void {
  try {
    if (!(err instanceof QuotaExceededError)) return;
    const { project, quotaBytes, usageBytes, sizeBytes, digest, message } = err;
    ctx.diagnosis = { code: 'quota-exceeded', message, project, quotaBytes, usageBytes, sizeBytes };
    // The route admitted the request, so its repository name is valid (no escapes to decode).
    const repository = params[0] ?? '';
    const manifest = routeName === 'manifest';
    const reference = manifest ? tagOf(params[1]) : undefined;
    const identity = ctx.auth.identity;
    registry.audit
      .record({
        actor: (identity ? identityName(identity) : undefined) ?? 'anonymous',
        action: QUOTA_EXCEEDED_ACTION,
        resourceType: manifest ? 'artifact' : 'blob',
        resource: `${repository}@${digest}`,
        project,
        client: ctx.origin.client,
        success: false,
        detail: { digest, quotaBytes, usageBytes, sizeBytes, ...(reference ? { tag: reference } : {}) },
      })
      .catch((failure: unknown) => ctx.log.error({ err: failure }, 'audit write failed'));
    registry.audit
      .recordEvent({ type: 'quota.exceeded', repository, project, digest, tag: reference ?? null, actor: (identity ? identityName(identity) : undefined) ?? null, detail: { quotaBytes, usageBytes, sizeBytes } })
      .catch((failure: unknown) => ctx.log.error({ err: failure }, 'event write failed'));
  } catch (failure) {
    ctx.log.error({ err: failure }, 'quota refusal could not be recorded');
  }
}

/** The tag a manifest was pushed to, if its reference is one (not a digest). */
function tagOf(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  try {
    const reference = decodeURIComponent(raw);
    return reference.includes(':') ? undefined : reference;
  } catch {
    return undefined;
  }
}

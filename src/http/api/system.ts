import { sql } from 'kysely';
import { z } from 'zod';
import { VERSION } from '../../version.ts';
import type { ApiServices } from './common.ts';
import { currentSettings } from './settings.ts';
import { operation, type Operation } from './route.ts';

/** `/system/info` (what this registry is and how it is set up) and `/health` (for monitors; no auth). */
export function systemOperations(services: ApiServices): Operation[] {
  const { config } = services;
  return [
    operation({
      id: 'systemInfo',
      method: 'GET',
      path: '/system/info',
      tag: 'system',
      summary: 'Version and settings clients need to know',
      description:
        'projectCreation and auditPulls are the values in effect (run-time settings over the configuration: see /system/settings). ' +
        'announcement: the administrators\' plain-text announcement (never HTML) for signed-in callers; always null for anonymous ones.',
      response: z.object({
        version: z.string(),
        externalURLs: z.array(z.string()),
        projectCreation: z.enum(['admins', 'everyone']),
        auditPulls: z.boolean(),
        announcement: z.string().nullable(),
        storage: z.enum(['filesystem', 's3']),
        database: z.enum(['sqlite', 'postgres']),
      }),
      handler: async ({ identity }) => {
        const settings = await currentSettings(services);
        return {
          body: {
            version: VERSION,
            externalURLs: config.externalURL,
            projectCreation: settings.projectCreation,
            auditPulls: settings.auditPulls,
            announcement: identity.kind === 'anonymous' ? null : settings.announcement,
            storage: config.storage.s3 ? 's3' : 'filesystem',
            database: config.database.url ? 'postgres' : 'sqlite',
          },
        };
      },
    }),
    operation({
      id: 'health',
      method: 'GET',
      path: '/health',
      tag: 'system',
      summary: 'Whether the server can reach its database (503 when it cannot)',
      auth: 'none',
      response: z.object({ status: z.enum(['ok', 'degraded']), database: z.enum(['ok', 'error']) }),
      handler: async ({ ctx }) => {
        try {
          await sql`select 1`.execute(services.meta.db);
          return { body: { status: 'ok', database: 'ok' } };
        } catch (err) {
          ctx.log.error({ err }, 'health check: database unreachable');
          return { status: 503, body: { status: 'degraded', database: 'error' } };
        }
      },
    }),
  ];
}

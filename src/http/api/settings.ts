// `/system/settings`: what an administrator may change without restarting (who creates projects,
// whether pulls are audited, an announcement for every signed-in user). Stored in the database
// (src/metadata/settings.ts) over the configuration file's values, in effect on every replica.
import { z } from 'zod';
import type { Config } from '../../config/schema.ts';
import { effectiveSettings, SETTING_KEYS, type SettingChanges, type SettingOverrides, type SettingValues } from '../../metadata/settings.ts';
import { audit, iso, isoTime, requireAdmin, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** Longest announcement, in characters. */
export const ANNOUNCEMENT_MAX = 500;

/** The configuration's values of the settings (what a reset returns to). */
export function configuredSettings(config: Config): SettingValues {
  return { projectCreation: config.projects.userCreation ? 'everyone' : 'admins', auditPulls: config.audit.pulls, announcement: null };
}

/** The settings in effect now (run-time values over the configuration's). Rejects only when the database cannot be read. */
export async function currentSettings(services: Pick<ApiServices, 'meta' | 'config'>): Promise<SettingValues> {
  return effectiveSettings(await services.meta.settings.overrides(), configuredSettings(services.config));
}

const setting = <T extends z.ZodType>(value: T) =>
  z.object({
    value,
    source: z.enum(['config', 'runtime']).describe('config: the configuration file\'s value; runtime: set by an administrator (PATCH)'),
    configValue: value.describe('the configuration file\'s value, what a reset (null) returns to'),
    updatedBy: z.string().nullable(),
    updatedAt: isoTime.nullable(),
  });

const projectCreation = z.enum(['admins', 'everyone']);
const announcementText = z.string().nullable();

const settingsView = z.object({
  projectCreation: setting(projectCreation),
  auditPulls: setting(z.boolean()),
  announcement: setting(announcementText),
});

// Plain text shown to every signed-in user: line breaks and tabs are text, other control
// characters (and the bidirectional overrides that disguise text) are refused.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

const settingsChange = z.strictObject({
  projectCreation: projectCreation.nullable().optional().describe('admins | everyone; null: back to projects.userCreation'),
  auditPulls: z.boolean().nullable().optional().describe('null: back to audit.pulls'),
  announcement: z
    .string()
    .max(ANNOUNCEMENT_MAX, `at most ${ANNOUNCEMENT_MAX} characters`)
    .refine((text) => !FORBIDDEN.test(text), 'plain text: no control characters other than line breaks and tabs')
    .nullable()
    .optional()
    .describe(`plain text (never HTML), at most ${ANNOUNCEMENT_MAX} characters; null or empty: none`),
});

function view(overrides: SettingOverrides, configured: SettingValues): z.output<typeof settingsView> {
  const one = <K extends keyof SettingValues>(key: K) => {
    const override = overrides[key];
    return {
      value: override ? override.value : configured[key],
      source: override ? ('runtime' as const) : ('config' as const),
      configValue: configured[key],
      updatedBy: override?.updatedBy ?? null,
      updatedAt: override ? iso(override.updatedAt) : null,
    };
  };
  return { projectCreation: one('projectCreation'), auditPulls: one('auditPulls'), announcement: one('announcement') };
}

/** GET and PATCH `/system/settings` (system administrators). */
export function settingsOperations(services: ApiServices): Operation[] {
  const { meta, config } = services;
  return [
    operation({
      id: 'getSettings',
      method: 'GET',
      path: '/system/settings',
      tag: 'system',
      summary: 'Run-time system settings: each value, and whether it comes from the configuration or was set at run time (system administrators)',
      response: settingsView,
      errors: [403],
      handler: async ({ identity }) => {
        await requireAdmin(services, identity);
        return { body: view(await meta.settings.overrides(), configuredSettings(config)) };
      },
    }),
    operation({
      id: 'updateSettings',
      method: 'PATCH',
      path: '/system/settings',
      tag: 'system',
      summary: 'Change run-time system settings without restarting (system administrators); null resets a setting to the configuration\'s value',
      description:
        'Takes effect on every replica within a change notification\'s trip. Keys left out are unchanged; an unknown key is refused (400 naming it). ' +
        'Audited as settings.update with the keys changed. Answers the settings as GET does.',
      body: settingsChange,
      response: settingsView,
      errors: [403],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        const changes: SettingChanges = {};
        if (body.projectCreation !== undefined) changes.projectCreation = body.projectCreation;
        if (body.auditPulls !== undefined) changes.auditPulls = body.auditPulls;
        // Whitespace alone announces nothing: stored as none.
        if (body.announcement !== undefined) changes.announcement = body.announcement === null || body.announcement.trim() === '' ? null : body.announcement;
        const keys = SETTING_KEYS.filter((key) => changes[key] !== undefined);
        const by = identity.kind === 'anonymous' ? null : identity.name;
        const overrides = keys.length > 0 ? await meta.settings.set(changes, by) : await meta.settings.overrides();
        if (keys.length > 0) await audit(services, ctx, identity, { action: 'settings.update', resourceType: 'settings', resource: 'system', detail: { keys } });
        return { body: view(overrides, configuredSettings(config)) };
      },
    }),
  ];
}

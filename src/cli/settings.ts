// `berth settings`: what an administrator may change while Berth runs (who creates projects,
// whether pulls are audited, the portal's announcement), over /api/v1/system/settings.
import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, withCommon } from './api-client.ts';
import { formatTime, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';

interface Setting {
  value: unknown;
  source: 'config' | 'runtime';
  configValue: unknown;
  updatedBy: string | null;
  updatedAt: string | null;
}
type Settings = Record<string, Setting>;

const KEYS = ['projectCreation', 'auditPulls', 'announcement'];

function checkKey(key: string): void {
  if (!KEYS.includes(key)) throw new CliError(`the setting: one of ${KEYS.join(', ')}`);
}

/** The value a command line gives for a key, as the API takes it. */
function parseValue(key: string, text: string): unknown {
  checkKey(key);
  switch (key) {
    case 'projectCreation':
      if (text !== 'admins' && text !== 'everyone') throw new CliError('projectCreation: admins or everyone');
      return text;
    case 'auditPulls':
      if (text !== 'true' && text !== 'false') throw new CliError('auditPulls: true or false');
      return text === 'true';
    default:
      return text;
  }
}

const shown = (value: unknown) => (value === null || value === '' ? '-' : String(value));

function print(settings: Settings): void {
  printTable(
    ['SETTING', 'VALUE', 'FROM', 'CONFIG VALUE', 'CHANGED BY', 'CHANGED'],
    Object.entries(settings).map(([key, s]) => [key, shown(s.value), s.source, shown(s.configValue), s.updatedBy ?? '-', formatTime(s.updatedAt)]),
  );
}

/** `berth settings [show] | set KEY VALUE | reset KEY` (system administrators). */
export function settingsCommand(program: Command): void {
  const settings = program.command('settings').description('settings an administrator may change while Berth runs (administrators)');

  withCommon(settings.command('show', { isDefault: true }).description('each setting: its value, and whether it comes from the configuration or was set at run time')).action(async (opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const answer = await client.get<Settings>('/system/settings');
    if (opts.json) return printJSON(answer);
    print(answer);
  });

  withCommon(settings.command('set <key> <value>').description('set projectCreation (admins|everyone), auditPulls (true|false) or announcement (text; "" for none)')).action(
    async (key: string, value: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const answer = await client.patch<Settings>('/system/settings', { [key]: parseValue(key, value) });
      if (opts.json) return printJSON(answer);
      print(answer);
    },
  );

  withCommon(settings.command('reset <key>').description("go back to the configuration's value")).action(async (key: string, opts: CommonFlags) => {
    checkKey(key);
    const { client } = await loggedInClient(opts.url);
    const answer = await client.patch<Settings>('/system/settings', { [key]: null });
    if (opts.json) return printJSON(answer);
    print(answer);
  });
}

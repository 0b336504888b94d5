import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, parseInteger, printFields, printJSON } from './format.ts';
import { CliError, printTable, readStdin } from './output.ts';

/** A webhook policy as the API describes it (the secret and the auth header never come back). */
export interface WebhookView {
  name: string;
  project: string;
  url: string;
  events: string[];
  format: string;
  description: string | null;
  enabled: boolean;
  hasSecret: boolean;
  hasAuthHeader: boolean;
  caFile: string | null;
  insecure: boolean;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  /** Only in the answer that generated it. */
  secret?: string;
}

/** A delivery as the delivery log lists it. */
export interface DeliveryView {
  id: number;
  eventId: number | null;
  eventType: string;
  messageId: string;
  state: string;
  attempts: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  deliveredAt: string | null;
  request?: string;
  response?: string | null;
}

const EVENTS = ['artifact.pushed', 'artifact.pulled', 'artifact.deleted', 'retention.finished', 'replication.finished', 'quota.warning', 'quota.exceeded'];
const FORMATS = ['harbor', 'cloudevents'];

interface SettingFlags {
  server?: string;
  json?: boolean;
  url?: string;
  event?: string[];
  format?: string;
  description?: string;
  generateSecret?: boolean;
  secretStdin?: boolean;
  authHeaderStdin?: boolean;
  authHeader?: string;
  caFile?: string;
  insecure?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

/** The options of `create` and `update`: there `--url` is the receiver's URL, so the stored login is chosen with `--server`. */
function settingOptions(cmd: Command, creating: boolean): Command {
  return cmd
    .option('--server <url>', 'Berth server to use when logins to several are stored')
    .option('--json', 'print JSON instead of text')
    .option('--url <url>', `the receiver's http(s) URL${creating ? ' (required)' : ''}`)
    .option('--event <type>', `an event type to send, repeatable or comma-separated: ${EVENTS.join(', ')}${creating ? ' (required)' : ''}`, collect)
    .option('--format <format>', `payload format: ${FORMATS.join(' or ')} (default harbor)`)
    .option('--description <text>', 'what it is for')
    .option('--generate-secret', 'generate a signing secret (printed once, never shown again)')
    .option('--secret-stdin', 'read a signing secret (whsec_…) from standard input (first line)')
    .option('--auth-header-stdin', 'read the Authorization header value sent with each delivery from standard input (first line)')
    .option('--auth-header <value>', 'the Authorization header value (visible to other users of this machine: prefer --auth-header-stdin)')
    .option('--ca-file <path>', 'PEM file of CA certificates trusted for the receiver, a path on the server')
    .option('--insecure', "do not verify the receiver's TLS certificate (test setups only)");
}

function check(opts: SettingFlags): void {
  for (const e of opts.event ?? []) if (!EVENTS.includes(e)) throw new CliError(`--event: one of ${EVENTS.join(', ')}`);
  if (opts.format !== undefined && !FORMATS.includes(opts.format)) throw new CliError(`--format: ${FORMATS.join(' or ')}`);
  if (opts.secretStdin && opts.authHeaderStdin) throw new CliError('--secret-stdin and --auth-header-stdin: standard input holds only one; pass the other with update');
  if (opts.secretStdin && opts.generateSecret) throw new CliError('--secret-stdin and --generate-secret: pick one');
  if (opts.authHeader !== undefined && opts.authHeaderStdin) throw new CliError('--auth-header and --auth-header-stdin: pick one');
}

async function firstLine(flag: string): Promise<string> {
  const line = (await readStdin()).split(/\r?\n/)[0] ?? '';
  if (line === '') throw new CliError(`${flag}: standard input is empty`);
  return line;
}

/** The API body of the setting flags (absent flags left out). */
async function bodyOf(opts: SettingFlags): Promise<Record<string, unknown>> {
  check(opts);
  const body: Record<string, unknown> = {};
  if (opts.url !== undefined) body.url = opts.url;
  if (opts.event?.length) body.events = opts.event;
  if (opts.format !== undefined) body.format = opts.format;
  if (opts.description !== undefined) body.description = opts.description;
  if (opts.generateSecret) body.generateSecret = true;
  if (opts.secretStdin) body.secret = await firstLine('--secret-stdin');
  if (opts.authHeaderStdin) body.authHeader = await firstLine('--auth-header-stdin');
  if (opts.authHeader !== undefined) {
    process.stderr.write('warning: --auth-header is visible to other users of this machine; use --auth-header-stdin\n');
    body.authHeader = opts.authHeader;
  }
  if (opts.caFile !== undefined) body.caFile = opts.caFile;
  if (opts.insecure) body.insecure = true;
  return body;
}

/** Prints a generated secret once, on its own, with what to do with it. */
function showSecret(w: WebhookView): void {
  if (!w.secret) return;
  console.log(`\n  signing secret (shown only now — give it to the receiver to verify webhook-signature):\n\n      ${w.secret}\n`);
}

function summary(w: WebhookView): string {
  return `${w.url} (${w.format}; ${w.events.join(', ')}${w.hasSecret ? '; signed' : ''}${w.enabled ? '' : '; disabled'})`;
}

function deliveryRow(d: DeliveryView): string[] {
  return [String(d.id), d.eventType, d.state, String(d.attempts), d.statusCode === null ? '-' : String(d.statusCode), formatTime(d.createdAt), d.state === 'pending' ? formatTime(d.nextAttemptAt) : formatTime(d.deliveredAt), d.error ?? ''];
}

/** `berth webhook create|list|show|update|delete|test|deliveries|redeliver`, over /api/v1/projects/{project}/webhooks. */
export function webhookCommand(program: Command): void {
  const cmd = program
    .command('webhook')
    .description("a project's webhooks: signed HTTP POSTs (Harbor or CloudEvents JSON) when artifacts are pushed, pulled or deleted, retention or replication finished, a quota neared or was hit — project administrators");
  const base = (project: string) => `/projects/${segment(project)}/webhooks`;

  settingOptions(cmd.command('create <project> <name>').description('add a webhook'), true)
    .option('--disabled', 'create it disabled')
    .action(async (project: string, name: string, opts: SettingFlags & { disabled?: boolean }) => {
      if (opts.url === undefined) throw new CliError('give --url: the receiver');
      if (!opts.event?.length) throw new CliError(`give --event: ${EVENTS.join(', ')}`);
      const body = { name, ...(await bodyOf(opts)), ...(opts.disabled ? { enabled: false } : {}) };
      const { client } = await loggedInClient(opts.server);
      const created = await client.post<WebhookView>(base(project), body);
      if (opts.json) return printJSON(created);
      console.log(`created webhook "${created.name}" in project "${created.project}": ${summary(created)}`);
      showSecret(created);
    });

  withCommon(cmd.command('list <project>').description("the project's webhooks")).action(async (project: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const { items } = await client.list<WebhookView>(base(project));
    if (opts.json) return printJSON(items);
    printTable(
      ['NAME', 'URL', 'FORMAT', 'EVENTS', 'SIGNED', 'ENABLED'],
      items.map((w) => [w.name, w.url, w.format, w.events.join(','), w.hasSecret ? 'yes' : 'no', w.enabled ? 'yes' : 'no']),
    );
  });

  withCommon(cmd.command('show <project> <name>').description("a webhook's settings (never its secret or auth header)")).action(async (project: string, name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const w = await client.get<WebhookView>(`${base(project)}/${segment(name)}`);
    if (opts.json) return printJSON(w);
    printFields([
      ['Name', w.name],
      ['Project', w.project],
      ['URL', w.url],
      ['Events', w.events.join(', ')],
      ['Format', w.format],
      ['Enabled', w.enabled ? 'yes' : 'no'],
      ['Signed', w.hasSecret ? 'yes (Standard Webhooks, secret saved)' : 'no'],
      ['Auth header', w.hasAuthHeader ? 'saved' : '-'],
      ['TLS', w.url.startsWith('http:') ? 'plain http' : w.insecure ? 'not verified (insecure)' : w.caFile ? `verified, CA ${w.caFile}` : 'verified'],
      ['Description', w.description ?? '-'],
      ['Created', `${formatTime(w.createdAt)}${w.createdBy ? ` by ${w.createdBy}` : ''}`],
      ['Updated', formatTime(w.updatedAt)],
    ]);
  });

  settingOptions(cmd.command('update <project> <name>').description("change a webhook (the name cannot change)"), false)
    .option('--enable', 'send deliveries again')
    .option('--disable', 'stop sending (pending deliveries wait)')
    .option('--no-secret', 'stop signing (remove the secret)')
    .option('--no-auth-header', 'remove the auth header')
    .option('--no-ca-file', 'stop trusting the extra CA file')
    .option('--verify-tls', 'verify the TLS certificate again (undo --insecure)')
    .action(async (project: string, name: string, opts: Omit<SettingFlags, 'caFile' | 'authHeader'> & { enable?: boolean; disable?: boolean; secret?: boolean; authHeader?: string | false; caFile?: string | false; verifyTls?: boolean }) => {
      if (opts.enable && opts.disable) throw new CliError('--enable and --disable: pick one');
      if (opts.insecure && opts.verifyTls) throw new CliError('--insecure and --verify-tls: pick one');
      if (opts.secret === false && (opts.generateSecret || opts.secretStdin)) throw new CliError('--no-secret removes the secret: give no other secret option with it');
      const body = await bodyOf({ ...opts, caFile: typeof opts.caFile === 'string' ? opts.caFile : undefined, authHeader: typeof opts.authHeader === 'string' ? opts.authHeader : undefined });
      if (opts.enable) body.enabled = true;
      if (opts.disable) body.enabled = false;
      if (opts.secret === false) body.secret = null;
      if (opts.authHeader === false) body.authHeader = null;
      if (opts.caFile === false) body.caFile = null;
      if (opts.verifyTls) body.insecure = false;
      if (Object.keys(body).length === 0) throw new CliError('nothing to change: give --url, --event, --format, --enable/--disable, --generate-secret …');
      const { client } = await loggedInClient(opts.server);
      const updated = await client.patch<WebhookView>(`${base(project)}/${segment(name)}`, body);
      if (opts.json) return printJSON(updated);
      console.log(`updated webhook "${updated.name}": ${summary(updated)}`);
      showSecret(updated);
    });

  withCommon(cmd.command('delete <project> <name>').description('delete a webhook and its delivery log')).action(async (project: string, name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    await client.delete(`${base(project)}/${segment(name)}`);
    if (opts.json) return printJSON({ project, name, deleted: true });
    console.log(`deleted webhook "${name}" of project "${project}"`);
  });

  withCommon(cmd.command('test <project> <name>').description('send a test event (an artifact.pushed of a made-up artifact) through the delivery queue'))
    .option('--wait', 'wait (up to a minute) until it was delivered or failed, and show how it went')
    .action(async (project: string, name: string, opts: CommonFlags & { wait?: boolean }) => {
      const { client } = await loggedInClient(opts.url);
      let d = await client.post<DeliveryView>(`${base(project)}/${segment(name)}/test`, {});
      if (opts.wait) {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          d = await client.get<DeliveryView>(`${base(project)}/${segment(name)}/deliveries/${d.id}`);
          // Settled, or its first attempt failed (an attempt in flight has no error yet).
          if (d.state !== 'pending' || (d.attempts > 0 && d.error !== null)) break;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      if (opts.json) return printJSON(d);
      if (!opts.wait) return console.log(`queued test delivery ${d.id} (message ${d.messageId}); follow it with: berth webhook deliveries ${project} ${name} ${d.id}`);
      const how = `${d.statusCode === null ? '' : `HTTP ${d.statusCode}`}${d.error ? `${d.statusCode === null ? '' : ': '}${d.error}` : ''}`;
      if (d.state === 'delivered') console.log(`delivered test delivery ${d.id} (${how}, ${d.durationMs ?? 0} ms)`);
      else throw new CliError(`test delivery ${d.id} ${d.state === 'failed' ? 'failed' : 'not delivered yet (it is retried: see berth webhook deliveries)'}${how ? `: ${how}` : ''}`);
    });

  withCommon(cmd.command('deliveries <project> <name> [id]').description("the webhook's delivery log, newest first; with an id, one delivery with its request body and the receiver's answer"))
    .option('--state <state>', 'only pending, delivered or failed deliveries')
    .option('--limit <n>', 'at most this many (default 50)')
    .action(async (project: string, name: string, id: string | undefined, opts: CommonFlags & { state?: string; limit?: string }) => {
      const { client } = await loggedInClient(opts.url);
      if (id !== undefined) {
        const n = parseInteger(id, 'id', 1);
        const d = await client.get<DeliveryView>(`${base(project)}/${segment(name)}/deliveries/${n}`);
        if (opts.json) return printJSON(d);
        printFields([
          ['Delivery', String(d.id)],
          ['Event', `${d.eventType}${d.eventId === null ? ' (test)' : ` (event ${d.eventId})`}`],
          ['Message id', d.messageId],
          ['State', d.state],
          ['Attempts', String(d.attempts)],
          ['Status', d.statusCode === null ? '-' : String(d.statusCode)],
          ['Error', d.error ?? '-'],
          ['Duration', d.durationMs === null ? '-' : `${d.durationMs} ms`],
          ['Next attempt', d.state === 'pending' ? formatTime(d.nextAttemptAt) : '-'],
          ['Created', formatTime(d.createdAt)],
          ['Delivered', formatTime(d.deliveredAt)],
        ]);
        console.log(`\nRequest body:\n${d.request ?? ''}\n\nResponse (first KiB):\n${d.response ?? '-'}`);
        return;
      }
      if (opts.state !== undefined && !['pending', 'delivered', 'failed'].includes(opts.state)) throw new CliError('--state: pending, delivered or failed');
      const limit = opts.limit === undefined ? 50 : parseInteger(opts.limit, '--limit', 1);
      const { items, total } = await client.list<DeliveryView>(`${base(project)}/${segment(name)}/deliveries`, { state: opts.state }, limit);
      if (opts.json) return printJSON(items);
      printTable(['ID', 'EVENT', 'STATE', 'ATTEMPTS', 'STATUS', 'CREATED', 'NEXT/DONE', 'ERROR'], items.map(deliveryRow));
      if (total > items.length) console.log(`(${items.length} of ${total}; --limit for more)`);
    });

  withCommon(cmd.command('redeliver <project> <name> <id>').description('send a delivery again (same message id and body; attempts start over)')).action(
    async (project: string, name: string, id: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const d = await client.post<DeliveryView>(`${base(project)}/${segment(name)}/deliveries/${parseInteger(id, 'id', 1)}/redeliver`, {});
      if (opts.json) return printJSON(d);
      console.log(`queued delivery ${d.id} again (message ${d.messageId})`);
    },
  );
}

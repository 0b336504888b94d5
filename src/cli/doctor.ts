import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_MAX_BODY, DEFAULT_REPOSITORY, runDoctor } from '../diagnose/doctor/index.ts';
import { DEFAULT_WIDTH, renderReport } from '../diagnose/doctor/render.ts';
import { parseSize } from '../diagnose/doctor/size.ts';
import { CliError } from './output.ts';

interface DoctorFlags {
  username?: string;
  password?: string;
  token?: string;
  repository: string;
  maxBody: string;
  insecure?: boolean;
  caFile?: string;
  json?: boolean;
  timeout: string;
}

/** The width to render for: the terminal's columns; else `COLUMNS`; else {@link DEFAULT_WIDTH}. */
function outputWidth(): number {
  if (process.stdout.isTTY && process.stdout.columns > 0) return process.stdout.columns;
  const env = Number(process.env['COLUMNS']);
  return Number.isInteger(env) && env > 0 ? env : DEFAULT_WIDTH;
}

/**
 * `berth doctor <registry-url>`: pushes and pulls a tiny image the way real clients do and names
 * the proxy mechanism (PROXIES.md M1–M11) that breaks it, then deletes everything it pushed (and on
 * Berth the repository and project it created). Exit 0 healthy; 1 a problem found, or something
 * the doctor made could not be deleted (the report lists it, with the reason); 2 not tested (no
 * connection, TLS, credentials refused, or the account may not push to the repository).
 */
export function doctorCommand(program: Command): void {
  program
    .command('doctor <registry-url>')
    .description('diagnose push/pull problems against any registry (Berth, Distribution, Harbor, zot) and the proxies in front of it')
    .option('-u, --username <name>', 'username for the registry')
    .option('-p, --password <password>', 'password (env: BERTH_DOCTOR_PASSWORD)')
    .option('--token <token>', 'a bearer token / personal access token, used as the password of the token flow (username defaults to berth-doctor)')
    .option('--repository <name>', 'repository to push the probe image to; what the doctor pushes is deleted afterwards (what cannot be is reported, exit 1)', DEFAULT_REPOSITORY)
    .option('--max-body <size>', 'largest request body to try when looking for body limits (e.g. 4MiB, 110MB)', `${DEFAULT_MAX_BODY / 1024 ** 2}MiB`)
    .option('--insecure', 'do not verify TLS certificates')
    .option('--ca-file <file>', 'PEM file of the CA that signed the registry certificate')
    .option('--json', 'print one JSON object instead of the table')
    .option('--timeout <seconds>', 'per-request timeout in seconds', '30')
    .addHelpText('after', [
      '',
      'Exit status: 0 healthy (everything the doctor pushed was deleted again);',
      '1 a problem found, or something the doctor made was left behind (listed,',
      'with the reason); 2 not tested (unreachable, TLS, credentials refused, or',
      'the account may not push to --repository).',
    ].join('\n'))
    .action(async (url: string, flags: DoctorFlags) => {
      let maxBody: number;
      try {
        maxBody = parseSize(flags.maxBody);
      } catch (error) {
        throw new CliError(`--max-body: ${(error as Error).message}`);
      }
      const timeout = Number(flags.timeout);
      if (!(timeout > 0)) throw new CliError('--timeout: a number of seconds greater than 0');
      let ca: string | undefined;
      if (flags.caFile) {
        try {
          ca = readFileSync(flags.caFile, 'utf8');
        } catch (error) {
          throw new CliError(`--ca-file: ${(error as Error).message}`);
        }
      }
      let report;
      try {
        report = await runDoctor({
          url,
          username: flags.username,
          password: flags.password ?? process.env['BERTH_DOCTOR_PASSWORD'],
          token: flags.token,
          repository: flags.repository,
          maxBody,
          insecure: flags.insecure,
          ca,
          timeoutMs: timeout * 1000,
        });
      } catch (error) {
        throw new CliError((error as Error).message);
      }
      if (flags.json) console.log(JSON.stringify(report, null, 2));
      else console.log(renderReport(report, outputWidth()).join('\n'));
      process.exitCode = report.exitCode;
    });
}

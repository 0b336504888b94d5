import type { Command } from 'commander';
import { readLogInputs } from '../diagnose/logs/read.ts';
import { explainLogs, renderText } from '../diagnose/logs/report.ts';
import { CliError, readStdin } from './output.ts';

/**
 * `berth logs explain [FILE…]`: reads proxy and registry logs and names why a push or pull failed
 * (a proxy mechanism of PROXIES.md, a quota refusal, or the failing step). Plain files, `docker
 * compose logs` output and syslog files alike. Exit code 0 when nothing failed, 1 when a problem
 * was named, 2 when no line could be parsed.
 */
export function logsCommand(program: Command): void {
  const logs = program.command('logs').description('read registry and proxy logs');
  logs
    .command('explain [files...]')
    .description('group nginx (combined, or Harbor\'s timed_combined), CNCF Distribution, Harbor and Berth log lines — files, `docker compose logs` or syslog output — into push/pull sessions and name the failing step (stdin when no file or "-")')
    .option('--json', 'print the report as JSON')
    .action(async (files: string[], opts: { json?: boolean }) => {
      let inputs;
      try {
        inputs = await readLogInputs(files, readStdin);
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err));
      }
      const report = explainLogs(inputs);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
      process.exitCode = report.exitCode;
    });
}

import type { Command } from 'commander';
import { loadConfig, OVERRIDES } from '../config/load.ts';
import { startBerth } from '../main.ts';

/** `berth serve`: runs the registry until SIGTERM/SIGINT, then shuts down gracefully. */
export function serveCommand(program: Command): void {
  const cmd = program.command('serve').description('run the registry server');
  cmd.option('-c, --config <file>', 'YAML configuration file (env: BERTH_CONFIG)');
  for (const o of OVERRIDES) {
    if (!o.flag) continue;
    const flag = o.flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    cmd.option(o.kind === 'boolean' ? `--${flag}` : `--${flag} <value>`, `${o.help} (env: ${o.env})`);
  }
  cmd.action(async (opts: Record<string, string | boolean | undefined>) => {
    const config = loadConfig({ file: opts.config as string | undefined, flags: opts });
    const berth = await startBerth(config);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      berth.log.info({ signal }, 'shutting down');
      berth.close().then(
        () => process.exit(0),
        (err: unknown) => {
          berth.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

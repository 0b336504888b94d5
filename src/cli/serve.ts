import type { Command } from 'commander';
import type { Logger } from 'pino';
import { OVERRIDES } from '../config/overrides.ts';

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
    // Loaded here, not at the top: every other subcommand starts without the server and zod.
    const { loadConfig } = await import('../config/load.ts');
    const { startBerth } = await import('../main.ts');
    const config = loadConfig({ file: opts.config as string | undefined, flags: opts });
    const berth = await startBerth(config);
    guardProcess(berth.log);
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

/**
 * A promise rejected with nobody to handle it would end the process (Node's default): one stray
 * background task must not take every request down with it, so it is logged at error level and
 * the server keeps serving. Uncaught exceptions keep their default (crash): the request path does
 * not raise them (see createHandler), and state after one cannot be trusted. Returns a function
 * that removes the handler.
 */
export function guardProcess(log: Logger): () => void {
  const onRejection = (reason: unknown) => {
    try {
      log.error({ err: reason }, 'unhandled rejection');
    } catch {
      // A reason that cannot be serialised: say that much.
      try {
        log.error({ reason: typeof reason }, 'unhandled rejection');
      } catch {
        // Logging itself failed; keep serving.
      }
    }
  };
  process.on('unhandledRejection', onRejection);
  return () => void process.off('unhandledRejection', onRejection);
}

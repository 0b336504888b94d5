import { Command } from 'commander';
import { ConfigError } from '../config/overrides.ts';
import { VERSION } from '../version.ts';
import { doctorCommand } from './doctor.ts';
import { CliError } from './output.ts';
import { proxyConfigCommand } from './proxy-config.ts';
import { serveCommand } from './serve.ts';
import { backupCommand } from './backup.ts';
import { migrateCommand } from './migrate.ts';
import { userCommand } from './user.ts';
import { groupCommand } from './group.ts';
import { settingsCommand } from './settings.ts';
import { authCommand } from './auth.ts';
import { logsCommand } from './logs.ts';
import { loginCommand } from './login.ts';
import { projectCommand } from './project.ts';
import { robotCommand } from './robot.ts';
import { tokenCommand } from './token.ts';
import { auditCommand } from './audit.ts';
import { jobsCommand } from './jobs.ts';
import { gcCommand } from './gc.ts';
import { repoCommand } from './repo.ts';
import { artifactCommand } from './artifact.ts';
import { tagCommand } from './tag.ts';
import { retentionCommand } from './retention.ts';
import { immutabilityCommand } from './immutability.ts';
import { registryCommand } from './registry.ts';
import { replicationCommand } from './replication.ts';
import { webhookCommand } from './webhook.ts';

const program = new Command('berth')
  .description('Berth: a self-hosted container image registry that works behind any reverse proxy')
  .version(VERSION, '-V, --version')
  .showHelpAfterError();
serveCommand(program);
backupCommand(program);
migrateCommand(program);
userCommand(program);
groupCommand(program);
settingsCommand(program);
authCommand(program);
logsCommand(program);
doctorCommand(program);
proxyConfigCommand(program);
loginCommand(program);
projectCommand(program);
robotCommand(program);
tokenCommand(program);
auditCommand(program);
jobsCommand(program);
gcCommand(program);
repoCommand(program);
artifactCommand(program);
tagCommand(program);
retentionCommand(program);
immutabilityCommand(program);
registryCommand(program);
replicationCommand(program);
webhookCommand(program);

// Output piped into a reader that stops early (`berth audit | head`): stop quietly, as other tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CliError || err instanceof ConfigError) {
    process.stderr.write(`berth: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

// Every password, token and secret the suite uses is remembered here, and every server the suite
// starts (in-process or as a process) has its log lines and audit rows scanned for them when it
// stops: a credential, or an Authorization value built from one, must never reach either.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';

const secrets = new Set<string>();

/** Remembers a credential (and the Basic value a client would build from it with `user`). Short values are ignored. */
export function rememberSecret(value: string | undefined | null, user?: string): void {
  if (typeof value !== 'string' || value.length < 8) return;
  secrets.add(value);
  if (user !== undefined) secrets.add(Buffer.from(`${user}:${value}`).toString('base64'));
}

/** Remembers every `password`, `token`, `secret`, `refresh_token`, `access_token` value in a parsed JSON body. */
export function rememberSecretsIn(body: unknown): void {
  if (typeof body !== 'object' || body === null) return;
  for (const [key, value] of Object.entries(body)) {
    if (typeof value === 'string' && /^(password|currentPassword|token|secret|refresh_token|access_token)$/.test(key)) rememberSecret(value);
    else if (typeof value === 'object') rememberSecretsIn(value);
  }
}

/** The remembered secrets that occur in `text`, shown by their first four characters only. */
function leaksIn(text: string): string[] {
  const found: string[] = [];
  for (const secret of secrets) if (text.includes(secret)) found.push(`${secret.slice(0, 4)}… (${secret.length} chars)`);
  return found;
}

/** Scans text lines as they are written; `assertClean` throws naming every leak found. */
export class LeakScanner {
  private readonly leaks: string[] = [];

  constructor(private readonly where: string) {}

  scan(line: string, source = 'log'): void {
    const found = leaksIn(line);
    if (found.length === 0 || this.leaks.length >= 20) return;
    let shown = line;
    for (const secret of secrets) shown = shown.split(secret).join('***');
    this.leaks.push(`${source}: ${found.join(', ')} in ${shown.slice(0, 300)}`);
  }

  /** Scans the audit rows of the Berth database in `dataDir` (if there is one). */
  scanAudit(dataDir: string): void {
    const file = join(dataDir, 'berth.db');
    if (!existsSync(file)) return;
    const db = new SQLite(file, { readonly: true, fileMustExist: true });
    try {
      for (const row of db.prepare('select * from audit_log').iterate()) this.scan(JSON.stringify(row), 'audit row');
    } catch (err) {
      // A database too old or too new for this query holds no audit rows to scan.
      if (!/no such table/.test((err as Error).message)) throw err;
    } finally {
      db.close();
    }
  }

  scanFile(file: string): void {
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, 'utf8').split('\n')) this.scan(line);
  }

  assertClean(): void {
    if (this.leaks.length > 0) throw new Error(`secrets reached the log or audit rows of ${this.where}:\n  ${this.leaks.join('\n  ')}`);
  }
}

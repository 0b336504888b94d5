// A database migrated by a newer Berth is refused by an older one, in one `berth:` line that says
// what to do, and is left untouched (an older Berth cannot know what the newer migrations changed).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { ConfigError } from '../../src/config/overrides.ts';
import { openMetadata } from '../../src/metadata/index.ts';

const BIN = new URL('../../bin/berth.js', import.meta.url).pathname;
const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A data directory whose database records `future` as executed migrations, as a newer Berth would leave it. */
async function upgradedByANewerBerth(...future: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-downgrade-'));
  dirs.push(dir);
  const meta = await openMetadata(dir);
  await meta.users.create('alice', 'not-a-real-hash', false);
  await meta.close();
  const db = new SQLite(join(dir, 'berth.db'));
  for (const name of future) db.prepare('insert into kysely_migration (name, timestamp) values (?, ?)').run(name, new Date().toISOString());
  db.close();
  return dir;
}

function snapshot(dir: string): unknown {
  const db = new SQLite(join(dir, 'berth.db'), { readonly: true });
  try {
    return {
      migrations: db.prepare('select name from kysely_migration order by name').pluck().all(),
      users: db.prepare('select username from users').pluck().all(),
      tables: db.prepare("select name from sqlite_master where type = 'table' order by name").pluck().all(),
    };
  } finally {
    db.close();
  }
}

const message = (dir: string, which: string) =>
  `the database in ${dir} was upgraded by a newer Berth (${which} unknown to this version): run that version or restore the backup taken before the upgrade`;

test('opening a database with a migration this version does not know: a ConfigError naming it, and nothing changed', async () => {
  const dir = await upgradedByANewerBerth('9999_from_the_future');
  const before = snapshot(dir);
  await assert.rejects(openMetadata(dir), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError: ${String(err)}`);
    assert.equal(err.message, message(dir, 'migration 9999_from_the_future is'));
    return true;
  });
  assert.deepEqual(snapshot(dir), before, 'the database is as the newer Berth left it');
});

test('several unknown migrations are all named', async () => {
  const dir = await upgradedByANewerBerth('9998_a', '9999_b');
  await assert.rejects(openMetadata(dir), { message: message(dir, 'migrations 9998_a, 9999_b are') });
});

test('berth serve on it: exit 1 with that one berth: line, no stack trace', async () => {
  const dir = await upgradedByANewerBerth('9999_from_the_future');
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dir, '--addr', '127.0.0.1:0', '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth serve did not exit: ${err}`));
    }, 30_000);
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      resolve({ code: exitCode, stderr: err });
    });
  });
  assert.equal(code, 1);
  assert.equal(stderr, `berth: ${message(dir, 'migration 9999_from_the_future is')}\n`);
});

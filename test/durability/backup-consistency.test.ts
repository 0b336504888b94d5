// The database copy of `berth backup` is one consistent moment even while another process commits
// to the database as fast as it can: a writer keeps an invariant in every transaction (a counter
// row equals the number of rows), and every copy must satisfy it and pass integrity_check.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { backupDataDir } from '../../src/cli/backup.ts';

const REPO_ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'berth-backup-consistency-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Commits `insert a row; counter = row count` in a loop until killed; prints its count now and then. */
const WRITER = `
const SQLite = require('better-sqlite3');
const db = new SQLite(process.argv[1]);
db.pragma('journal_mode = WAL');
db.pragma('busy_timeout = 10000');
const insert = db.prepare('insert into t (pad) values (randomblob(1024))');
const bump = db.prepare("update meta set n = n + 1 where k = 'rows'");
const step = db.transaction(() => { insert.run(); bump.run(); });
let n = 0;
for (;;) { step(); if (++n % 200 === 0) process.stdout.write(n + '\\n'); }
`;

test('copies taken while another process commits continuously are each one consistent moment', async () => {
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  const db = new SQLite(join(data, 'berth.db'));
  db.pragma('journal_mode = WAL');
  db.exec("create table t (seq integer primary key, pad blob); create table meta (k text primary key, n integer); insert into meta values ('rows', 0)");
  const fill = db.transaction((rows: number) => {
    for (let i = 0; i < rows; i++) db.prepare('insert into t (pad) values (randomblob(1024))').run();
    db.prepare("update meta set n = n + ? where k = 'rows'").run(rows);
  });
  fill(30_000); // about 30 MiB: a copy takes long enough for many commits to land during it
  db.close();

  const writer = spawn(process.execPath, ['-e', WRITER, join(data, 'berth.db')], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let written = 0;
  writer.stdout.on('data', (chunk: Buffer) => (written = Number(chunk.toString().trim().split('\n').at(-1))));
  try {
    while (written < 400) await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 3; i++) {
      const writtenBefore = written;
      const summary = await backupDataDir(data, join(dir, `copy${i}`));
      assert.ok(written > writtenBefore, `the writer committed during copy ${i} (${writtenBefore} → ${written})`);
      assert.equal(summary.database.integrity, 'ok');
      const copy = new SQLite(join(dir, `copy${i}`, 'berth.db'), { readonly: true });
      try {
        const rows = copy.prepare('select count(*) from t').pluck().get() as number;
        const counter = copy.prepare("select n from meta where k = 'rows'").pluck().get() as number;
        const last = copy.prepare('select max(seq) from t').pluck().get() as number;
        assert.equal(counter, rows, `copy ${i}: the counter matches the rows (no torn transaction)`);
        assert.equal(last, rows, `copy ${i}: no row missing in between`);
        assert.ok(rows > 30_000, `copy ${i} holds rows committed after the fill (${rows})`);
      } finally {
        copy.close();
      }
    }
  } finally {
    writer.kill('SIGKILL');
    await new Promise((resolve) => writer.once('exit', resolve));
  }
});

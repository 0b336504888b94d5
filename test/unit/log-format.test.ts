// Logs: readable lines on a terminal, JSON otherwise (log.format: json | pretty | auto).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { formatLine, logDestination } from '../../src/logging/pretty.ts';

test('a JSON log line becomes: local time, level name, message, then the fields', () => {
  const time = new Date(2026, 11, 4, 14, 3, 7, 412).getTime();
  const line = JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', service: 'berth', reqId: 'abc', msg: 'login failed', username: 'dave', client: '10.0.0.1', detail: { a: 1 }, note: 'two words' });
  assert.equal(formatLine(line), '14:03:07.412 WARN  login failed reqId=abc username=dave client=10.0.0.1 detail={"a":1} note="two words"');
  assert.equal(formatLine('not json'), 'not json');
  const err = JSON.stringify({ level: 50, time, msg: 'unexpected error', err: { type: 'TypeError', message: 'boom', stack: 'TypeError: boom\n at x' } });
  assert.match(formatLine(err), /ERROR unexpected error err="TypeError: boom"$/);
});

test('auto is pretty on a terminal and JSON elsewhere; json and pretty are what they say', () => {
  const lines: string[] = [];
  const tty = { isTTY: true, write: (text: string) => void lines.push(text) };
  const pipe = { isTTY: false, write: (text: string) => void lines.push(text) };
  assert.equal(logDestination('auto', pipe), undefined, 'JSON on stdout (pino default) when not a terminal');
  assert.equal(logDestination('json', tty), undefined);
  assert.ok(logDestination('pretty', pipe));
  const log = pino({ base: { service: 'berth' } }, logDestination('auto', tty));
  log.info({ port: 5000 }, 'berth listening');
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} INFO  berth listening port=5000\n$/);
});

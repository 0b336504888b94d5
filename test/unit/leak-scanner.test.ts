// The suite's secret scanner (test/support/secrets.ts) must catch what it is there to catch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeakScanner, rememberSecret, rememberSecretsIn } from '../support/secrets.ts';

test('a remembered secret, or the Basic value built from it, in a log line fails the scan', () => {
  rememberSecret('scanner-test-password-1', 'carol');
  rememberSecretsIn({ items: [{ name: 'x', secret: 'scanner-test-robot-secret' }] });
  const clean = new LeakScanner('a clean server');
  clean.scan('{"msg":"request","user":"carol","auth":"basic"}');
  clean.assertClean();
  for (const line of [
    '{"msg":"login failed","password":"scanner-test-password-1"}',
    `{"msg":"request","authorization":"Basic ${Buffer.from('carol:scanner-test-password-1').toString('base64')}"}`,
    '{"detail":{"secret":"scanner-test-robot-secret"}}',
  ]) {
    const leaky = new LeakScanner('a leaky server');
    leaky.scan(line);
    assert.throws(() => leaky.assertClean(), (err: Error) => /secrets reached the log or audit rows of a leaky server/.test(err.message) && !err.message.includes('scanner-test-password-1"'), line);
  }
});

// The start-up configuration check (src/config/check.ts): warnings for what breaks clients behind proxies.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkConfig } from '../../src/config/check.ts';
import { configSchema } from '../../src/config/schema.ts';

const check = (overrides: Record<string, unknown>): string[] => checkConfig(configSchema.parse({ addr: '127.0.0.1:5000', ...overrides }));
const portWarnings = (warnings: string[]): string[] => warnings.filter((w) => /different ports/.test(w));

describe('external URLs sharing a host name', () => {
  test('the same name with different ports: a proxy dropping the port makes them indistinguishable', () => {
    const warnings = portWarnings(check({ externalURL: ['https://hub.example.com', 'http://hub.example.com:5000'] }));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /^externalURL lists hub\.example\.com with different ports \(https:\/\/hub\.example\.com, http:\/\/hub\.example\.com:5000\)/);
    assert.match(warnings[0]!, /a proxy that drops the port .* makes them indistinguishable/);
    assert.match(warnings[0]!, /Host \$http_host/);
  });

  test('two non-default ports of one name, with one scheme, warn too; once per name', () => {
    const warnings = portWarnings(check({ externalURL: ['https://hub.example.com:8443', 'https://hub.example.com:9443', 'https://hub.example.com:10443', 'https://other.example.com'] }));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /hub\.example\.com:8443, https:\/\/hub\.example\.com:9443, https:\/\/hub\.example\.com:10443/);
  });

  test('no warning for different names, one URL, or http and https on their default ports (no port to drop)', () => {
    assert.deepEqual(portWarnings(check({ externalURL: ['https://hub.example.com', 'http://127.0.0.1:5000'] })), []);
    assert.deepEqual(portWarnings(check({ externalURL: ['https://hub.example.com:8443'] })), []);
    assert.deepEqual(portWarnings(check({ externalURL: ['https://hub.example.com', 'http://hub.example.com'] })), []);
    assert.deepEqual(portWarnings(check({ externalURL: ['https://hub.example.com', 'https://hub.example.com:443'] })), [], 'the same URL written twice');
  });

  test('the other warnings stay: no externalURL at all', () => {
    assert.ok(check({}).some((w) => /^externalURL is not set/.test(w)));
  });
});

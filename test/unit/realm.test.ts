// The token realm's base URL (src/http/realm.ts externalBase): from the configured external URLs,
// or from the request — where a plain-HTTP request addressed to port 443 came through a TLS proxy.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RequestOrigin } from '../../src/http/forwarded.ts';
import { externalBase } from '../../src/http/realm.ts';

const origin = (scheme: 'http' | 'https', host: string | undefined, source: RequestOrigin['source'] = 'connection', schemeForwarded = source !== 'connection'): RequestOrigin =>
  ({ peer: '127.0.0.1', trustedProxy: source !== 'connection', client: '127.0.0.1', scheme, host, source, schemeForwarded });
const base = (o: RequestOrigin, urls: string[] = []): string => externalBase(o, urls, '127.0.0.1', 5000);

describe('realm without externalURL', () => {
  test('plain HTTP with Host name:443 (a proxy terminating TLS sent $host:$server_port): https://name', () => {
    assert.equal(base(origin('http', 'hub.example.com:443')), 'https://hub.example.com');
    assert.equal(base(origin('http', 'Hub.Example.com:443')), 'https://hub.example.com');
    assert.equal(base(origin('http', '[2001:db8::1]:443')), 'https://[2001:db8::1]');
  });

  test('everything else keeps the scheme and host the request came with', () => {
    assert.equal(base(origin('http', 'hub.example.com')), 'http://hub.example.com');
    assert.equal(base(origin('http', 'hub.example.com:80')), 'http://hub.example.com');
    assert.equal(base(origin('http', 'hub.example.com:5000')), 'http://hub.example.com:5000');
    assert.equal(base(origin('http', 'hub.example.com:4430')), 'http://hub.example.com:4430');
    assert.equal(base(origin('https', 'hub.example.com:443')), 'https://hub.example.com');
    assert.equal(base(origin('https', 'hub.example.com:8443')), 'https://hub.example.com:8443');
    assert.equal(base(origin('http', undefined)), 'http://127.0.0.1:5000');
  });

  test('a trusted proxy that states only the client address: the :443 rule still applies', () => {
    assert.equal(base(origin('http', 'hub.example.com:443', 'x-forwarded', false)), 'https://hub.example.com');
    assert.equal(base(origin('http', 'hub.example.com:443', 'forwarded', false)), 'https://hub.example.com');
  });

  test('a trusted proxy that says http is believed, port 443 or not', () => {
    assert.equal(base(origin('http', 'hub.example.com:443', 'x-forwarded')), 'http://hub.example.com:443');
    assert.equal(base(origin('https', 'hub.example.com', 'forwarded')), 'https://hub.example.com');
  });

  test('a configured externalURL always wins', () => {
    assert.equal(base(origin('http', 'hub.example.com:443'), ['http://hub.example.com:443']), 'http://hub.example.com:443');
    assert.equal(base(origin('http', 'hub.example.com:443'), ['https://registry.example.com']), 'https://registry.example.com');
  });
});

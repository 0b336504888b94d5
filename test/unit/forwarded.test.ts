// The forwarded-header parser and trust rules (PROXIES.md M3), and Berth's configuration self-check.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { checkConfig } from '../../src/config/check.ts';
import { configSchema } from '../../src/config/schema.ts';
import { AddressSet, parseCidr } from '../../src/domain/cidr.ts';
import { parseForwarded, resolveOrigin } from '../../src/http/forwarded.ts';
import { matchExternalURL } from '../../src/http/realm.ts';

function request(peer: string, headers: Record<string, string>): IncomingMessage {
  return { headers, socket: { remoteAddress: peer } } as unknown as IncomingMessage;
}

const PROXIES = new AddressSet(['10.0.0.0/8', '::1']);

test('CIDR parsing and address sets', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  assert.deepEqual(parseCidr('fd00::/8'), { address: 'fd00::', prefix: 8, family: 'ipv6' });
  assert.equal(parseCidr('127.0.0.1')?.prefix, 32);
  for (const bad of ['10.0.0.0/33', 'example.com', '', '10.0.0/8', '1.2.3.4/x']) assert.equal(parseCidr(bad), undefined, bad);
  assert.ok(PROXIES.has('10.1.2.3'));
  assert.ok(PROXIES.has('::ffff:10.1.2.3'), 'IPv4-mapped peers match IPv4 blocks');
  assert.ok(PROXIES.has('::1'));
  assert.ok(!PROXIES.has('11.0.0.1'));
  assert.ok(!PROXIES.has(undefined));
  assert.throws(() => new AddressSet(['nope']), /not an IP address or CIDR/);
});

test('RFC 7239 Forwarded: quoted values, IPv6 nodes, several elements', () => {
  assert.deepEqual(parseForwarded('for=192.0.2.60;proto=http;by=203.0.113.43'), [{ for: '192.0.2.60', proto: 'http', by: '203.0.113.43' }]);
  assert.deepEqual(parseForwarded('For="[2001:db8:cafe::17]:4711";Host="hub.example.com:8443", for=10.0.0.5;proto=https'), [
    { for: '[2001:db8:cafe::17]:4711', host: 'hub.example.com:8443' },
    { for: '10.0.0.5', proto: 'https' },
  ]);
  assert.deepEqual(parseForwarded('for="a,b;c"'), [{ for: 'a,b;c' }], 'separators inside quotes are data');
  assert.deepEqual(parseForwarded(''), []);
});

test('forwarded headers from an untrusted peer are ignored', () => {
  const origin = resolveOrigin(request('203.0.113.9', { host: 'internal:5000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', 'x-forwarded-for': '1.2.3.4' }), false, PROXIES);
  assert.deepEqual(origin, { peer: '203.0.113.9', trustedProxy: false, client: '203.0.113.9', scheme: 'http', host: 'internal:5000', source: 'connection' });
});

test('X-Forwarded-*: client is the rightmost untrusted hop; lists appended per hop are read at that hop', () => {
  const simple = resolveOrigin(request('10.0.0.2', { host: 'berth:5000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'hub.example.com', 'x-forwarded-for': '198.51.100.7' }), false, PROXIES);
  assert.deepEqual(simple, { peer: '10.0.0.2', trustedProxy: true, client: '198.51.100.7', scheme: 'https', host: 'hub.example.com', source: 'x-forwarded' });

  // A client forging X-Forwarded-For: the forged entry is left of the real client and never chosen.
  const forged = resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.0.0.9' }), false, PROXIES);
  assert.equal(forged.client, '198.51.100.7');

  // Two proxies each appended their scheme: the entry of the hop that saw the client is "https".
  const chain = resolveOrigin(request('10.0.0.2', { host: 'x', 'x-forwarded-for': '198.51.100.7, 10.0.0.9', 'x-forwarded-proto': 'https, http' }), false, PROXIES);
  assert.equal(chain.scheme, 'https');
  // One value overwritten by the nearest proxy: that is the one believed (a client cannot forge it).
  const overwritten = resolveOrigin(request('10.0.0.2', { host: 'x', 'x-forwarded-for': '198.51.100.7, 10.0.0.9', 'x-forwarded-proto': 'http' }), false, PROXIES);
  assert.equal(overwritten.scheme, 'http');

  const port = resolveOrigin(request('10.0.0.2', { 'x-forwarded-host': 'hub.example.com', 'x-forwarded-port': '8443', 'x-forwarded-proto': 'https' }), false, PROXIES);
  assert.equal(port.host, 'hub.example.com:8443');
  const defaultPort = resolveOrigin(request('10.0.0.2', { 'x-forwarded-host': 'hub.example.com', 'x-forwarded-port': '443', 'x-forwarded-proto': 'https' }), false, PROXIES);
  assert.equal(defaultPort.host, 'hub.example.com');
  const realIp = resolveOrigin(request('10.0.0.2', { 'x-real-ip': '198.51.100.8' }), false, PROXIES);
  assert.equal(realIp.client, '198.51.100.8');
});

test('Forwarded wins over X-Forwarded-* and is walked past trusted hops', () => {
  const origin = resolveOrigin(
    request('::ffff:10.0.0.2', {
      host: 'berth:5000',
      forwarded: 'for=198.51.100.7;proto=https;host=hub.example.com, for=10.0.0.9;proto=http;host=inner',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'wrong.example',
    }),
    false,
    PROXIES,
  );
  assert.deepEqual(origin, { peer: '10.0.0.2', trustedProxy: true, client: '198.51.100.7', scheme: 'https', host: 'hub.example.com', source: 'forwarded' });
});

test('external URL matching: exact host[:port], then host name alone (scheme first), else the first', () => {
  const urls = ['https://hub.example.com', 'http://lan.example.com:5000', 'https://alt.example.com:8443', 'http://alt.example.com:8080'];
  const at = (host: string | undefined, scheme: 'http' | 'https' = 'http') =>
    matchExternalURL({ peer: '', trustedProxy: false, client: '', scheme, host, source: 'connection' }, urls);
  assert.equal(at('hub.example.com:443'), 'https://hub.example.com');
  assert.equal(at('lan.example.com:5000'), 'http://lan.example.com:5000');
  assert.equal(at('lan.example.com'), 'http://lan.example.com:5000', 'port dropped by `Host $host`');
  assert.equal(at('alt.example.com', 'https'), 'https://alt.example.com:8443');
  assert.equal(at('alt.example.com', 'http'), 'http://alt.example.com:8080');
  assert.equal(at('127.0.0.1:5000'), 'https://hub.example.com', "nginx's default Host (the upstream) → the first URL");
  assert.equal(at(undefined), 'https://hub.example.com');
  assert.equal(matchExternalURL({ peer: '', trustedProxy: false, client: '', scheme: 'http', host: 'x', source: 'connection' }, []), undefined);
});

test('the configuration self-check names what would break clients', () => {
  const check = (raw: Record<string, unknown>) => checkConfig(configSchema.parse(raw));
  assert.match(check({}).join('\n'), /externalURL is not set/);
  assert.deepEqual(check({ externalURL: ['https://hub.example.com'], addr: '0.0.0.0:5000' }), [], 'a usual deployment behind a TLS proxy is fine');
  assert.match(check({ externalURL: ['https://hub.example.com:5000'], addr: '0.0.0.0:5000' }).join('\n'), /serves plain HTTP there/);
  assert.match(check({ externalURL: ['http://hub.example.com'] }).join('\n'), /plain HTTP: passwords and tokens/);
  assert.deepEqual(check({ externalURL: ['http://localhost:5000'] }), [], 'plain HTTP on loopback is fine');
  assert.match(check({ externalURL: ['http://x.example:80', 'https://x.example:80'] }).join('\n'), /both http and https/);
  assert.match(check({ externalURL: ['https://hub.example.com'], trustedProxies: ['0.0.0.0/0'] }).join('\n'), /forge its address/);
  assert.match(check({ externalURL: ['https://hub.example.com'], auth: { tokenTTL: 60 } }).join('\n'), /M9/);
  assert.throws(() => configSchema.parse({ trustedProxies: ['10.0.0.0/40'] }), /CIDR/);
});

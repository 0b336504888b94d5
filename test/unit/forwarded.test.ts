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
  assert.deepEqual(origin, { peer: '203.0.113.9', trustedProxy: false, client: '203.0.113.9', scheme: 'http', host: 'internal:5000', source: 'connection', schemeForwarded: false });
});

test('X-Forwarded-*: client is the rightmost untrusted hop; lists appended per hop are read at that hop', () => {
  const simple = resolveOrigin(request('10.0.0.2', { host: 'berth:5000', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'hub.example.com', 'x-forwarded-for': '198.51.100.7' }), false, PROXIES);
  assert.deepEqual(simple, { peer: '10.0.0.2', trustedProxy: true, client: '198.51.100.7', scheme: 'https', host: 'hub.example.com', source: 'x-forwarded', schemeForwarded: true });

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
  assert.deepEqual(origin, { peer: '10.0.0.2', trustedProxy: true, client: '198.51.100.7', scheme: 'https', host: 'hub.example.com', source: 'forwarded', schemeForwarded: true });
});

// A trusted proxy passes on every header it does not write itself. nginx with the PROXIES.md recipe
// (`proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`) appends the peer it saw to whatever
// X-Forwarded-For the client sent and passes the client's Forwarded and X-Real-IP on unchanged.
test('a client-sent Forwarded through a proxy that writes only X-Forwarded-For is not believed', () => {
  // Client 198.51.100.7 sends Forwarded: for=6.6.6.6 and X-Forwarded-For: 6.6.6.6; nginx 10.0.0.2 appends.
  const spoof = resolveOrigin(
    request('10.0.0.2', {
      host: 'hub.example.com',
      forwarded: 'for=6.6.6.6;proto=http;host=evil.example',
      'x-forwarded-for': '6.6.6.6, 198.51.100.7',
      'x-forwarded-proto': 'https',
    }),
    false,
    PROXIES,
  );
  assert.deepEqual(spoof, {
    peer: '10.0.0.2',
    trustedProxy: true,
    client: '10.0.0.2',
    scheme: 'http',
    host: 'hub.example.com',
    source: 'connection',
    schemeForwarded: false,
    conflict: { forwarded: '6.6.6.6', 'x-forwarded-for': '198.51.100.7' },
  });
  // The same when the client forges only Forwarded (X-Forwarded-For is then nginx's alone).
  const only = resolveOrigin(request('10.0.0.2', { forwarded: 'for="[2001:db8::6]:1234"', 'x-forwarded-for': '198.51.100.7' }), false, PROXIES);
  assert.equal(only.client, '10.0.0.2');
  assert.deepEqual(only.conflict, { forwarded: '2001:db8::6', 'x-forwarded-for': '198.51.100.7' });
  // An obfuscated or unknown node cannot be shown to agree either.
  for (const node of ['_hidden', 'unknown', '"[::1]"']) {
    const hidden = resolveOrigin(request('10.0.0.2', { forwarded: `for=${node}`, 'x-forwarded-for': '198.51.100.7' }), false, PROXIES);
    if (node === '"[::1]"') assert.equal(hidden.client, '198.51.100.7', 'a trusted address names no client: outvoted');
    else assert.deepEqual([hidden.client, hidden.conflict], ['10.0.0.2', { forwarded: 'unknown', 'x-forwarded-for': '198.51.100.7' }], node);
  }
});

test('the mirror: a client-sent X-Forwarded-For or X-Real-IP through a proxy that writes only Forwarded or X-Real-IP', () => {
  // The proxy appends `for=<peer>` to Forwarded and passes the client's X-Forwarded-For on.
  const forwardedOnly = resolveOrigin(request('10.0.0.2', { host: 'x', forwarded: 'for=198.51.100.7;proto=https', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'http' }), false, PROXIES);
  assert.deepEqual(
    [forwardedOnly.client, forwardedOnly.source, forwardedOnly.scheme, forwardedOnly.conflict],
    ['10.0.0.2', 'connection', 'http', { forwarded: '198.51.100.7', 'x-forwarded-for': '6.6.6.6' }],
  );
  // The client also forged Forwarded: the proxy appended its own element, the right-most untrusted one.
  const appended = resolveOrigin(request('10.0.0.2', { forwarded: 'for=6.6.6.6;proto=http, for=198.51.100.7;proto=https' }), false, PROXIES);
  assert.deepEqual([appended.client, appended.scheme, appended.source], ['198.51.100.7', 'https', 'forwarded']);
  // `proxy_set_header X-Real-IP $remote_addr` alone passes a client's X-Forwarded-For on.
  const realIpOnly = resolveOrigin(request('10.0.0.2', { 'x-real-ip': '198.51.100.7', 'x-forwarded-for': '6.6.6.6' }), false, PROXIES);
  assert.deepEqual([realIpOnly.client, realIpOnly.conflict], ['10.0.0.2', { 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '198.51.100.7' }]);
  // …and a client naming a trusted address there is outvoted by the untrusted address the proxy wrote.
  const trustedClaim = resolveOrigin(request('10.0.0.2', { 'x-real-ip': '198.51.100.7', 'x-forwarded-for': '10.0.0.5' }), false, PROXIES);
  assert.deepEqual([trustedClaim.client, trustedClaim.conflict], ['198.51.100.7', undefined]);
  const trustedForwarded = resolveOrigin(request('10.0.0.2', { forwarded: 'for=10.0.0.5;proto=https;host=evil.example', 'x-forwarded-for': '198.51.100.7' }), false, PROXIES);
  assert.deepEqual([trustedForwarded.client, trustedForwarded.source, trustedForwarded.host], ['198.51.100.7', 'x-forwarded', undefined]);
});

test('headers that agree are believed as before: Forwarded first, then X-Forwarded-*', () => {
  const agree = resolveOrigin(
    request('10.0.0.2', {
      host: 'berth:5000',
      forwarded: 'for="198.51.100.7:4711";proto=https;host=hub.example.com',
      'x-forwarded-for': '6.6.6.6, 198.51.100.7',
      'x-real-ip': '198.51.100.7',
      'x-forwarded-proto': 'http',
    }),
    false,
    PROXIES,
  );
  assert.deepEqual(agree, { peer: '10.0.0.2', trustedProxy: true, client: '198.51.100.7', scheme: 'https', host: 'hub.example.com', source: 'forwarded', schemeForwarded: true });
  const v6 = resolveOrigin(request('10.0.0.2', { forwarded: 'for="[2001:db8::7]:4711"', 'x-forwarded-for': '2001:db8::7', 'x-real-ip': '[2001:db8::7]:4711' }), false, PROXIES);
  assert.deepEqual([v6.client, v6.conflict], ['2001:db8::7', undefined], 'the same address in different notations');
  // The generated nginx config: X-Forwarded-For appended, X-Real-IP overwritten, Forwarded dropped.
  const generated = resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 198.51.100.7', 'x-real-ip': '198.51.100.7', 'x-forwarded-proto': 'https' }), false, PROXIES);
  assert.deepEqual([generated.client, generated.scheme, generated.source], ['198.51.100.7', 'https', 'x-forwarded']);
});

test('one family alone: the right-most untrusted hop, never a forged entry left of it', () => {
  const xff = resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 7.7.7.7, 198.51.100.7' }), false, PROXIES);
  assert.equal(xff.client, '198.51.100.7');
  const fwd = resolveOrigin(request('10.0.0.2', { forwarded: 'for=6.6.6.6, for=198.51.100.7' }), false, PROXIES);
  assert.equal(fwd.client, '198.51.100.7');
  // A client forging a trusted proxy's address left of itself changes nothing either.
  const trustedForged = resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '10.0.0.9, 198.51.100.7' }), false, PROXIES);
  assert.equal(trustedForged.client, '198.51.100.7');
  // Entries with a port are read as addresses; an entry that is no address at all is not taken as one.
  assert.equal(resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '198.51.100.7:5555' }), false, PROXIES).client, '198.51.100.7');
  assert.equal(resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '[2001:db8::7]:443' }), false, PROXIES).client, '2001:db8::7');
  for (const junk of ['unknown', 'not-an-address', '6.6.6.6, <script>']) {
    const origin = resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': junk }), false, PROXIES);
    assert.deepEqual([origin.client, origin.conflict], ['10.0.0.2', undefined], junk);
  }
});

test('chains of trusted proxies are walked past; when every hop is trusted, the left-most is the client', () => {
  // outer nginx 10.0.0.9 saw the client; inner nginx 10.0.0.2 appended 10.0.0.9 and set X-Real-IP to it.
  const chain = resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.0.0.9', 'x-real-ip': '10.0.0.9' }), false, PROXIES);
  assert.deepEqual([chain.client, chain.conflict], ['198.51.100.7', undefined], 'a trusted X-Real-IP names no client to disagree with');
  const both = resolveOrigin(
    request('10.0.0.2', { forwarded: 'for=6.6.6.6, for=198.51.100.7;proto=https, for=10.0.0.9;proto=http', 'x-forwarded-for': '198.51.100.7, 10.0.0.9' }),
    false,
    PROXIES,
  );
  assert.deepEqual([both.client, both.scheme, both.source], ['198.51.100.7', 'https', 'forwarded']);
  const disagreeing = resolveOrigin(request('10.0.0.2', { forwarded: 'for=198.51.100.7, for=10.0.0.9', 'x-forwarded-for': '198.51.100.8, 10.0.0.9' }), false, PROXIES);
  assert.deepEqual([disagreeing.client, disagreeing.conflict], ['10.0.0.2', { forwarded: '198.51.100.7', 'x-forwarded-for': '198.51.100.8' }]);
  // A client inside a trusted range (trustedProxies should list proxies only): the left-most hop.
  const inside = resolveOrigin(request('10.0.0.2', { 'x-forwarded-for': '10.1.2.3, 10.0.0.9', 'x-real-ip': '10.0.0.9' }), false, PROXIES);
  assert.deepEqual([inside.client, inside.conflict], ['10.1.2.3', undefined]);
  const insideFwd = resolveOrigin(request('::1', { forwarded: 'for=10.1.2.3;proto=https, for="[::1]"' }), false, PROXIES);
  assert.deepEqual([insideFwd.client, insideFwd.scheme], ['10.1.2.3', 'https']);
});

test('external URL matching: exact host[:port], then host name alone (scheme first), else the first', () => {
  const urls = ['https://hub.example.com', 'http://lan.example.com:5000', 'https://alt.example.com:8443', 'http://alt.example.com:8080'];
  const at = (host: string | undefined, scheme: 'http' | 'https' = 'http') =>
    matchExternalURL({ peer: '', trustedProxy: false, client: '', scheme, host, source: 'connection', schemeForwarded: false }, urls);
  assert.equal(at('hub.example.com:443'), 'https://hub.example.com');
  assert.equal(at('lan.example.com:5000'), 'http://lan.example.com:5000');
  assert.equal(at('lan.example.com'), 'http://lan.example.com:5000', 'port dropped by `Host $host`');
  assert.equal(at('alt.example.com', 'https'), 'https://alt.example.com:8443');
  assert.equal(at('alt.example.com', 'http'), 'http://alt.example.com:8080');
  assert.equal(at('127.0.0.1:5000'), 'https://hub.example.com', "nginx's default Host (the upstream) → the first URL");
  assert.equal(at(undefined), 'https://hub.example.com');
  assert.equal(matchExternalURL({ peer: '', trustedProxy: false, client: '', scheme: 'http', host: 'x', source: 'connection', schemeForwarded: false }, []), undefined);
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

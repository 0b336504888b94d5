// `berth proxy-config`: every option reaches the output, the settings that matter are there, bad
// flags fail naming the flag, and nginx/haproxy accept the generated files (`nginx -t`, `haproxy -c`).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { generateProxyConfig, PROXY_KINDS, type ProxyConfigInput, ProxyConfigError } from '../../src/diagnose/proxy-config/index.ts';
import { REPO_ROOT } from '../support/berth.ts';
import { run } from '../support/run.ts';
import { ensurePackages, tmpDir } from '../support/system.ts';
import { type TlsMaterial, createTlsMaterial } from '../support/tls.ts';

const execFileP = promisify(execFile);

const FULL: ProxyConfigInput = {
  externalUrl: 'https://hub.example.com:8443',
  upstream: 'http://127.0.0.1:5123',
  tlsCert: '/srv/certs/hub-chain.pem',
  tlsKey: '/srv/certs/hub-key.pem',
  listen: '127.0.0.9:9443',
};

/** Lines that are not comments (a comment after a directive is cut off). */
function directives(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter(Boolean);
}

describe('proxy-config output', () => {
  for (const kind of PROXY_KINDS) {
    test(`${kind}: every option reaches the output, and the Berth settings end it`, () => {
      const out = generateProxyConfig(kind, FULL);
      const code = directives(out).join('\n');
      assert.match(code, /127\.0\.0\.1:5123/, 'upstream');
      assert.match(code, /\/srv\/certs\/hub-chain\.pem/, 'certificate');
      if (kind !== 'haproxy') assert.match(code, /\/srv\/certs\/hub-key\.pem/, 'key');
      else assert.match(out, /ln -s \/srv\/certs\/hub-key\.pem \/srv\/certs\/hub-chain\.pem\.key/, 'key link note');
      assert.match(out, /127\.0\.0\.9/, 'listen address');
      assert.match(out, /9443/, 'listen port');
      assert.match(out, /hub\.example\.com/);
      const tail = out.trimEnd().split('\n').slice(-5).join('\n');
      assert.match(tail, /^# +externalURL: https:\/\/hub\.example\.com:8443 /m);
      assert.match(tail, /^# +trustedProxies: \["127\.0\.0\.1"\] /m);
      assert.doesNotMatch(out, /placeholder/, 'explicit certificate paths are not called placeholders');
    });

    test(`${kind}: default certificate paths are used and called placeholders`, () => {
      const out = generateProxyConfig(kind, { externalUrl: 'https://hub.example.com' });
      assert.match(out, /\/etc\/ssl\/berth\/fullchain\.pem/);
      assert.match(out, /placeholder/);
      assert.match(out, /:5000/, 'default upstream');
    });

    test(`${kind}: an http external URL means no TLS at all`, () => {
      const out = generateProxyConfig(kind, { externalUrl: 'http://hub.example.com:8080' });
      const code = directives(out).join('\n');
      assert.doesNotMatch(code, /ssl|tls|\.pem/i);
      assert.match(out, /8080/);
      assert.match(out, /externalURL: http:\/\/hub\.example\.com:8080 /);
    });
  }

  test('nginx: the settings that matter, each with a reason', () => {
    const out = generateProxyConfig('nginx', FULL);
    for (const want of [
      'proxy_set_header Host $http_host;',
      'proxy_set_header X-Forwarded-Proto $scheme;',
      'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
      'client_max_body_size 0;',
      'proxy_request_buffering off;',
      'proxy_http_version 1.1;',
      'proxy_read_timeout 900s;',
      'proxy_send_timeout 900s;',
      'listen 127.0.0.9:9443 ssl;',
    ]) {
      const line = out.split('\n').find((l) => l.trim().startsWith(want));
      assert.ok(line, `missing ${want}`);
      assert.match(line, /;\s+# \S/, `no reason after ${want}`);
    }
    const code = directives(out);
    assert.ok(!code.some((l) => /^(return|rewrite|auth_basic|proxy_set_header Authorization)\b/.test(l)), 'no redirect or auth rewriting');
  });

  // A proxy passes on every header it does not set itself: a client's own Forwarded or X-Real-IP
  // would reach Berth as if the trusted proxy had written it (M3). Each generator drops or overwrites them.
  const SPOOF_GUARDS: Record<(typeof PROXY_KINDS)[number], RegExp[]> = {
    nginx: [
      /^proxy_set_header Forwarded "";$/m,
      /^proxy_set_header X-Real-IP \$remote_addr;$/m,
      /^proxy_set_header X-Forwarded-Host "";$/m,
      /^proxy_set_header X-Forwarded-Port "";$/m,
      /^proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;$/m,
    ],
    haproxy: [
      /^http-request del-header Forwarded$/m,
      /^http-request set-header X-Real-IP %\[src\]$/m,
      /^http-request del-header X-Forwarded-Host$/m,
      /^http-request del-header X-Forwarded-Port$/m,
      /^option forwardfor$/m,
    ],
    caddy: [/^header_up -Forwarded$/m, /^header_up X-Real-IP \{remote_host\}$/m, /^header_up -X-Forwarded-Port$/m],
    // Traefik replaces X-Forwarded-* and X-Real-Ip of untrusted clients itself; Forwarded needs a middleware.
    traefik: [/^middlewares: \[berth-forwarded\]$/m, /^Forwarded: ""$/m],
  };
  for (const kind of PROXY_KINDS) {
    for (const inner of [false, true]) {
      test(`${kind}${inner ? ' (inner)' : ''}: a client-sent Forwarded is dropped and X-Real-IP overwritten, and the file says why`, () => {
        const out = generateProxyConfig(kind, { externalUrl: 'https://hub.example.com', inner });
        const code = directives(out).join('\n');
        for (const want of SPOOF_GUARDS[kind]) assert.match(code, want);
        assert.match(out, /^\s*# .*a client could name any address in its own/m, 'a comment line says why');
        assert.doesNotMatch(code, /Forwarded \$|X-Real-IP \$http_/i, 'nothing passes a client value on');
      });
    }
  }

  test('traefik: the middleware removing Forwarded is valid YAML and attached to the router', () => {
    const doc = parseYaml(generateProxyConfig('traefik', FULL)) as {
      http: { routers: Record<string, { middlewares?: string[] }>; middlewares: Record<string, { headers: { customRequestHeaders: Record<string, string> } }> };
    };
    assert.deepEqual(doc.http.routers['berth']?.middlewares, ['berth-forwarded']);
    assert.deepEqual(doc.http.middlewares['berth-forwarded']?.headers.customRequestHeaders, { Forwarded: '' });
  });

  test('inner hops pass X-Forwarded-Proto on instead of setting it', () => {
    const nginx = directives(generateProxyConfig('nginx', { externalUrl: 'https://hub.example.com', inner: true })).join('\n');
    assert.match(nginx, /proxy_set_header X-Forwarded-Proto \$http_x_forwarded_proto;/);
    assert.doesNotMatch(nginx, /\$scheme|ssl/);
    assert.match(nginx, /listen 80;/);
    const haproxy = directives(generateProxyConfig('haproxy', { externalUrl: 'https://hub.example.com', inner: true })).join('\n');
    assert.doesNotMatch(haproxy, /X-Forwarded-Proto/);
    assert.doesNotMatch(haproxy, /ssl/);
    const outer = directives(generateProxyConfig('haproxy', { externalUrl: 'https://hub.example.com' })).join('\n');
    assert.match(outer, /http-request set-header X-Forwarded-Proto https/);
    const caddy = directives(generateProxyConfig('caddy', { externalUrl: 'https://hub.example.com', inner: true })).join('\n');
    assert.match(caddy, /header_up X-Forwarded-Proto \{http\.request\.header\.X-Forwarded-Proto\}/);
    assert.match(generateProxyConfig('traefik', { externalUrl: 'https://hub.example.com', inner: true }), /trustedIPs/);
    // With certificates of its own, an inner hop serves TLS but still passes the scheme on.
    const innerTls = directives(generateProxyConfig('nginx', { ...FULL, inner: true })).join('\n');
    assert.match(innerTls, /listen 127\.0\.0\.9:9443 ssl;/);
    assert.match(innerTls, /\$http_x_forwarded_proto/);
  });

  test('traefik: valid YAML with the host header kept, and the static timeout note', () => {
    const out = generateProxyConfig('traefik', FULL);
    const doc = parseYaml(out) as {
      http: { routers: Record<string, { rule: string; tls?: unknown }>; services: Record<string, { loadBalancer: { passHostHeader: boolean; servers: { url: string }[] } }> };
      tls: { certificates: { certFile: string; keyFile: string }[] };
    };
    assert.equal(doc.http.routers['berth']?.rule, 'Host(`hub.example.com`)');
    assert.deepEqual(doc.http.services['berth']?.loadBalancer.servers, [{ url: 'http://127.0.0.1:5123' }]);
    assert.equal(doc.http.services['berth']?.loadBalancer.passHostHeader, true);
    assert.deepEqual(doc.tls.certificates, [{ certFile: '/srv/certs/hub-chain.pem', keyFile: '/srv/certs/hub-key.pem' }]);
    assert.match(out, /readTimeout: 0/);
    assert.match(out, /address: "127\.0\.0\.9:9443"/);
  });

  test('IPv6 listen and upstream addresses are written the way each proxy reads them', () => {
    const input = { externalUrl: 'https://hub.example.com', listen: '[::1]:8443', upstream: 'http://[::1]:5000' };
    assert.match(generateProxyConfig('nginx', input), /listen \[::1\]:8443 ssl;[\s\S]*proxy_pass http:\/\/\[::1\]:5000;/);
    assert.match(generateProxyConfig('haproxy', input), /bind ::1:8443 ssl[\s\S]*server berth ::1:5000/);
    assert.match(generateProxyConfig('haproxy', input), /trustedProxies: \["::1"\]/);
    assert.match(generateProxyConfig('nginx', { externalUrl: 'https://hub.example.com', upstream: 'http://10.1.2.3:5000' }), /trustedProxies: \["<this proxy's address/);
  });
});

describe('proxy-config validation names the flag', () => {
  const cases: [string, ProxyConfigInput, RegExp][] = [
    ['missing external URL', {}, /^--external-url: required/],
    ['not a URL', { externalUrl: 'hub.example.com' }, /^--external-url: "hub\.example\.com" is not a URL/],
    ['wrong scheme', { externalUrl: 'ftp://hub.example.com' }, /^--external-url: scheme must be http or https/],
    ['a path', { externalUrl: 'https://hub.example.com/registry' }, /^--external-url: must be the registry's root/],
    ['credentials', { externalUrl: 'https://u:p@hub.example.com' }, /^--external-url: must not contain a user name/],
    ['bad upstream', { externalUrl: 'https://hub.example.com', upstream: 'tcp://127.0.0.1:5000' }, /^--upstream: scheme must be http or https/],
    ['upstream path', { externalUrl: 'https://hub.example.com', upstream: 'http://127.0.0.1:5000/x' }, /^--upstream: must be/],
    ['listen name', { externalUrl: 'https://hub.example.com', listen: 'example.com:443' }, /^--listen: "example\.com" is not an IP address/],
    ['listen port', { externalUrl: 'https://hub.example.com', listen: '127.0.0.1:99999' }, /^--listen: port must be 1-65535/],
    ['cert without key', { externalUrl: 'https://hub.example.com', tlsCert: '/a.pem' }, /^--tls-key: give both/],
    ['relative cert', { externalUrl: 'https://hub.example.com', tlsCert: 'a.pem', tlsKey: '/k.pem' }, /^--tls-cert: must be an absolute path/],
    ['unsafe key path', { externalUrl: 'https://hub.example.com', tlsCert: '/a.pem', tlsKey: '/k.pem; evil' }, /^--tls-key: path must not contain/],
    ['TLS with http', { externalUrl: 'http://hub.example.com', tlsCert: '/a.pem', tlsKey: '/k.pem' }, /^--tls-cert\/--tls-key: the external URL is http/],
  ];
  for (const [name, input, message] of cases) {
    test(name, () => {
      assert.throws(() => generateProxyConfig('nginx', input), (err: unknown) => err instanceof ProxyConfigError && message.test(err.message));
    });
  }
  test('unknown proxy kind', () => {
    assert.throws(() => generateProxyConfig('apache', { externalUrl: 'https://x.example' }), /proxy kind must be one of nginx, haproxy, caddy, traefik/);
  });

  test('the real CLI prints the error naming the flag and exits 1', async () => {
    const cli = path.join(REPO_ROOT, 'bin', 'berth.js');
    await assert.rejects(execFileP(process.execPath, [cli, 'proxy-config', 'nginx', '--external-url', 'ftp://x.example'], { cwd: REPO_ROOT }), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr ?? '', /^berth: --external-url: scheme must be http or https/);
      return true;
    });
    const ok = await execFileP(process.execPath, [cli, 'proxy-config', 'haproxy', '--external-url', 'https://hub.example.com'], { cwd: REPO_ROOT });
    assert.equal(ok.stdout, generateProxyConfig('haproxy', { externalUrl: 'https://hub.example.com' }));
  });
});

describe('nginx and haproxy accept the generated files', () => {
  let dir: string;
  let tls: TlsMaterial;
  before(async () => {
    await ensurePackages([{ binary: 'nginx', pkg: 'nginx' }, { binary: 'haproxy', pkg: 'haproxy' }]);
    dir = await tmpDir('berth-proxy-config');
    tls = await createTlsMaterial({ dnsNames: ['hub.example.com'], dir });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const external of ['https://hub.example.com:8443', 'http://hub.example.com']) {
    for (const inner of [false, true]) {
      test(`nginx -t: ${external}${inner ? ' (inner)' : ''}`, async () => {
        const tlsFlags = external.startsWith('https') && !inner ? { tlsCert: tls.serverCert, tlsKey: tls.serverKey } : {};
        const conf = path.join(dir, `berth-${inner}-${external.length}.conf`);
        await writeFile(conf, generateProxyConfig('nginx', { externalUrl: external, inner, listen: '127.0.0.9', ...tlsFlags }));
        const prefix = path.join(dir, `nginx-${inner}-${external.length}`);
        await mkdir(prefix, { recursive: true });
        const main = path.join(prefix, 'nginx.conf');
        await writeFile(main, nginxWrapper(prefix, conf));
        const result = await run('nginx', ['-t', '-c', main, '-p', prefix, '-e', path.join(prefix, 'error.log')], { allowFailure: true, timeoutMs: 30_000 });
        assert.equal(result.code, 0, `nginx -t failed:\n${result.stderr}`);
      });
    }
  }

  test('nginx -t rejects a broken file (the check can fail)', async () => {
    const conf = path.join(dir, 'broken.conf');
    await writeFile(conf, generateProxyConfig('nginx', { externalUrl: 'http://hub.example.com' }).replace('proxy_http_version 1.1;', 'proxy_http_version 1.1'));
    const prefix = path.join(dir, 'nginx-broken');
    await mkdir(prefix, { recursive: true });
    await writeFile(path.join(prefix, 'nginx.conf'), nginxWrapper(prefix, conf));
    const result = await run('nginx', ['-t', '-c', path.join(prefix, 'nginx.conf'), '-p', prefix, '-e', path.join(prefix, 'error.log')], { allowFailure: true, timeoutMs: 30_000 });
    assert.notEqual(result.code, 0);
  });

  for (const external of ['https://hub.example.com', 'http://hub.example.com:8080']) {
    for (const inner of [false, true]) {
      test(`haproxy -c: ${external}${inner ? ' (inner)' : ''}`, async () => {
        // HAProxy finds the key beside the certificate as <cert>.key, as the generated comment says.
        const cert = path.join(dir, 'haproxy.crt');
        await copyFile(tls.serverCert, cert);
        await copyFile(tls.serverKey, `${cert}.key`);
        await chmod(`${cert}.key`, 0o600);
        const tlsFlags = external.startsWith('https') && !inner ? { tlsCert: cert, tlsKey: `${cert}.key` } : {};
        const cfg = path.join(dir, `haproxy-${inner}-${external.length}.cfg`);
        await writeFile(cfg, generateProxyConfig('haproxy', { externalUrl: external, inner, listen: '127.0.0.9:9443', upstream: 'http://[::1]:5000', ...tlsFlags }));
        const result = await run('haproxy', ['-c', '-f', cfg], { allowFailure: true, timeoutMs: 30_000 });
        assert.equal(result.code, 0, `haproxy -c failed:\n${result.stdout}\n${result.stderr}`);
      });
    }
  }
});

/** A main nginx.conf that includes the generated file with private pid, log and temp paths. */
function nginxWrapper(prefix: string, include: string): string {
  const p = (name: string): string => path.join(prefix, name);
  return [
    `pid ${p('nginx.pid')};`,
    `error_log ${p('error.log')};`,
    'events { worker_connections 64; }',
    'http {',
    `    access_log ${p('access.log')};`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${p(`tmp-${t}`)};`),
    `    include ${include};`,
    '}',
    '',
  ].join('\n');
}

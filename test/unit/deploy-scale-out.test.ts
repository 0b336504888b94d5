// deploy/scale-out/ is the deployment the scale-out end-to-end test runs: its files must be what
// test/support/scale-out-config.ts renders for the placeholder values, the YAML must be a valid
// Berth configuration with the env file's secrets, and nginx must accept the proxy configuration.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { run } from '../support/run.ts';
import {
  DEPLOY_DIR,
  EXAMPLE_DEPLOYMENT,
  exampleDeployFiles,
  externalUrlOf,
  renderScaleOutNginx,
  replicaEnv,
} from '../support/scale-out-config.ts';
import { ensurePackages, tmpDir } from '../support/system.ts';

test('deploy/scale-out/ holds exactly what the generator renders for the placeholders', () => {
  for (const [name, text] of Object.entries(exampleDeployFiles())) {
    const file = path.join(DEPLOY_DIR, name);
    assert.equal(readFileSync(file, 'utf8'), text, `${file} differs from the generator: run node --import tsx test/support/scale-out-config.ts (and review the diff)`);
  }
});

test('the replica configuration loads: PostgreSQL, S3, the shared key and the lease, secrets from berth.env', async () => {
  const dir = await tmpDir('berth-deploy-yaml');
  const file = path.join(dir, 'berth.yaml');
  writeFileSync(file, readFileSync(path.join(DEPLOY_DIR, 'berth.yaml')));
  const config = loadConfig({ file, env: replicaEnv(EXAMPLE_DEPLOYMENT) });
  assert.equal(config.database.url, EXAMPLE_DEPLOYMENT.secrets.databaseUrl);
  assert.equal(config.storage.s3?.bucket, EXAMPLE_DEPLOYMENT.s3.bucket);
  assert.equal(config.storage.s3?.secretAccessKey, EXAMPLE_DEPLOYMENT.secrets.s3SecretAccessKey);
  assert.equal(config.storage.s3?.forcePathStyle, true);
  assert.equal(config.auth.signingKey, EXAMPLE_DEPLOYMENT.signingKey);
  assert.equal(config.jobs.lease, 60);
  assert.deepEqual(config.externalURL, [externalUrlOf(EXAMPLE_DEPLOYMENT)]);
  assert.deepEqual(config.trustedProxies, EXAMPLE_DEPLOYMENT.trustedProxies);
  const yaml = readFileSync(file, 'utf8');
  for (const secret of Object.values(replicaEnv(EXAMPLE_DEPLOYMENT))) assert.ok(!yaml.includes(secret), 'no secret in the YAML file');
});

test('nginx accepts the proxy configuration (nginx -t), and it never retries a non-idempotent request', async () => {
  await ensurePackages([{ binary: 'nginx', pkg: 'nginx' }]);
  const conf = renderScaleOutNginx(EXAMPLE_DEPLOYMENT);
  assert.match(conf, /^\s*proxy_next_upstream error timeout;$/m, 'the default, without non_idempotent or http_5xx');
  const directives = conf.replace(/#.*$/gm, '');
  assert.doesNotMatch(directives, /non_idempotent|http_50[234]|ip_hash|sticky|hash \$/, 'no resend of a POST/PATCH, no pinning');
  assert.match(conf, /^\s*proxy_request_buffering off;/m);
  const dir = await tmpDir('berth-deploy-nginx');
  // The placeholder certificate paths do not exist here: point them at a throw-away pair for the check.
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=registry.example.com', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]);
  const local = renderScaleOutNginx({ ...EXAMPLE_DEPLOYMENT, tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }, accessLog: path.join(dir, 'access.log') });
  writeFileSync(path.join(dir, 'berth.conf'), local);
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n    client_body_temp_path ${dir}/body;\n    proxy_temp_path ${dir}/proxy;\n    include ${dir}/berth.conf;\n}\n`,
  );
  const checked = await run('nginx', ['-t', '-c', path.join(dir, 'nginx.conf'), '-p', dir, '-e', path.join(dir, 'error.log')], { allowFailure: true });
  assert.equal(checked.code, 0, `nginx -t: ${checked.stderr}`);
});

// Regenerates the corpus of REAL logs that `berth logs explain` is tested on
// (test/fixtures/logs/real-matrix/, read by test/unit/logs-explain-real.test.ts).
//
//   sudo node --import tsx test/support/capture-logs.ts [OUT_DIR]     # default: the corpus dir; ~5 min
//
// (then `git add -f` the files: .gitignore ignores *.log). The corpus is built in OUT_DIR.partial and
// replaces OUT_DIR only when every push ended as its topology says.
//
// It sets up what the proxy matrix (test/e2e/proxy-matrix.test.ts) sets up — one Berth and the
// reference registry (Distribution 2.8, htpasswd) in a network namespace, the nine nginx topologies
// of topologies.ts in front of both, dockerd/containerd on the host — and pushes fresh images
// through them: ctr through every topology to both registries (the client that exposes host/port
// mismatches), docker and skopeo through t2 (the clients that survive it), and ctr to Berth on the
// LAN address without a proxy. Per push it keeps what each hop logged during that push only: every
// nginx layer's access log in the standard `combined` format, its error log at warn level and above
// (nginx's default keeps `error`; the matrix logs at info), and Berth's JSON log or the reference
// registry's log. A passing push is followed by a pull (the client drivers verify the image): each
// file is cut after its last manifest PUT, so a file holds the lines of one push.
//
// Each case's expected verdict is written to manifest.json from the topology alone
// (PUSH_EXPECTATIONS in topologies.ts, the facts the matrix asserts), never from the explainer,
// and the client's own outcome is recorded beside it: a case whose push passed where the topology
// must break it (or the reverse) is refused, not written. Passwords never reach these logs;
// Distribution's signed upload state (`_state=…`, an HMAC token) is replaced by a fixed
// placeholder, and the files are scanned for the run's passwords, the registry's http.secret and
// anything shaped like a JWT before they are written. The normal test run never runs this.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBerth } from './berth.ts';
import { type ClientRun, ClientFailure, type RegistryTarget, pushPullCtr, pushPullDocker, pushPullSkopeo } from './clients.ts';
import { startDockerd } from './dockerd.ts';
import { createRandomImage } from './images.ts';
import { createTestNetns } from './netns.ts';
import { ProcessRegistry } from './processes.ts';
import { startReferenceRegistry } from './reference-registry.ts';
import { stripAnsi } from './run.ts';
import { LeakScanner, rememberSecret } from './secrets.ts';
import { E2E_PACKAGES, ensurePackages } from './system.ts';
import { createTlsMaterial } from './tls.ts';
import {
  type MatrixClient,
  type MatrixRegistry,
  type Topology,
  TOPOLOGIES,
  expectedPush,
  startTopology,
  topologyExternalURL,
  topologyNames,
} from './topologies.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CORPUS_DIR = path.resolve(HERE, '..', 'fixtures', 'logs', 'real-matrix');

/** The same image shape as the matrix: one layer over 1 MiB (trips nginx's default body limit), two small ones. */
const LAYER_SIZES = [1_600_000, 48_000, 700];
const BERTH_PORT = 5000;
const REF_PORT = 5001;
/** A push that must fail is bounded as in the matrix: ctr hangs on some failures. */
const FAILING_PUSH_TIMEOUT_MS = 30_000;
/** Time for every hop to write its last lines (nginx logs a request when it ends; pino writes asynchronously). */
const SETTLE_MS = 1_500;

/**
 * For a push the topology must break: what its proxy's own access log (nginx.ts's `berth` format,
 * which records Host, the kind of Authorization and the Location sent) must show, so a push that
 * failed for this reason is told from one that failed somehow — as the matrix's mustFailPush does.
 * Not written to the corpus: real deployments log `combined`.
 */
function failureEvidence(t: Topology, registry: MatrixRegistry, client: MatrixClient): RegExp | undefined {
  const uploadStarted = (location: string): RegExp => new RegExp(`"POST /v2/[^"]*/blobs/uploads/ [^"]*" 202 .*location="${location}`);
  if (registry === 'ref') {
    switch (t.spec.id) {
      case 2: return client === 'ctr' ? /"(PUT|PATCH) \/v2\/[^"]*" 401 host="[^"]*:443" auth=none / : undefined;
      case 3: return uploadStarted('https?://127\\.0\\.0\\.1:\\d+/'); // Location names the upstream
      case 4:
      case 5: return uploadStarted('http://'); // Location lost the scheme
      case 6: return uploadStarted('https://[^/:"]+/v2/'); // Location lost the port
    }
  }
  return t.spec.accessLogEvidence;
}

/** One entry of manifest.json: a push, the files it left, what the topology says it must end in, and how it did end. */
export interface CorpusCase {
  /** Directory under the corpus, e.g. `t2-host-with-port.ref.ctr`. */
  readonly name: string;
  /** The topology (undefined: Berth on its LAN address, no proxy). */
  readonly topology?: { readonly id: number; readonly slug: string; readonly summary: string };
  readonly registry: MatrixRegistry;
  readonly client: MatrixClient;
  readonly repository: string;
  /** Files of the case, in the case's directory: nginx layers outermost first, then the registry's log. */
  readonly files: readonly string[];
  /** `OK`, or the PROXIES.md mechanism the topology breaks this push with. */
  readonly expected: string;
  /** Why, in one line (from PUSH_EXPECTATIONS). */
  readonly why: string;
  /** The client's own outcome: `pass`, or `failed` with its last words. */
  readonly push: 'pass' | 'failed';
  readonly clientSaid?: string;
  /** For a failed push: the line of the proxy's own diagnostic access log (not in the corpus) that shows the topology's cause. */
  readonly proxyEvidence?: string;
}

interface Plan {
  readonly name: string;
  readonly topology?: Topology;
  readonly registry: MatrixRegistry;
  readonly client: MatrixClient;
}

/** Where the logs of one push come from, with the byte offset each had before the push. */
interface Source {
  /** File name in the fixture. */
  readonly name: string;
  readonly file: string;
  readonly kind: 'access' | 'error' | 'registry';
  offset: number;
}

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

async function readFrom(file: string, offset: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    await handle.read(buffer, 0, buffer.length, offset);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

const MANIFEST_PUT = (line: string): boolean => /\bPUT\b/.test(line) && /\/manifests\//.test(line);
/** nginx error-log levels kept: what `error_log … warn;` would have written. */
const KEPT_ERROR_LEVEL = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(warn|error|crit|alert|emerg)\]/;

/** Distribution's upload state is HMAC-signed with http.secret: a token, not to be committed. */
function redactUploadState(text: string): string {
  // The value is base64url: it ends at `&`, a quote, a blank, or the `\u0026` JSON writes for `&`.
  const out = text.replace(/_state=[^&"\s\\]+/g, '_state=REDACTED-UPLOAD-STATE');
  const params = (s: string): number => (s.match(/(&|\\u0026)[a-z]+=/g) ?? []).length;
  if (params(out) !== params(text)) throw new Error(`redacting _state removed other query parameters: ${text.slice(0, 300)}`);
  return out;
}

/** The lines of one push: complete lines only, cut after the last manifest PUT when the push passed, secrets replaced. */
export function trimToPush(text: string, kind: Source['kind'], passed: boolean): string {
  let lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('=== '));
  if (kind === 'error') lines = lines.filter((l) => KEPT_ERROR_LEVEL.test(l));
  if (passed) {
    let last = lines.length - 1;
    while (last >= 0 && !MANIFEST_PUT(lines[last]!)) last--;
    if (last >= 0) lines = lines.slice(0, last + 1);
  }
  return lines.map(redactUploadState).join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: it creates a network namespace, edits /etc/hosts and runs dockerd');
  const out = path.resolve(process.argv[2] ?? CORPUS_DIR);
  await ensurePackages([
    ...E2E_PACKAGES,
    { binary: 'ip', pkg: 'iproute2' },
    { binary: 'docker-registry', pkg: 'docker-registry' },
    { binary: 'htpasswd', pkg: 'apache2-utils' },
  ]);
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  const stop = (): void => {
    void registry.stopAllAndClean(scratch, false).finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const domain = `c${randomBytes(3).toString('hex')}.matrix.test`;
  const problems: string[] = [];
  try {
    // The matrix's setup (proxy-matrix.test.ts before()), step by step.
    const netns = await createTestNetns({ registry });
    const names = TOPOLOGIES.flatMap((spec) => Object.values(topologyNames(spec, domain)));
    const tls = await createTlsMaterial({ dnsNames: [`*.${domain}`, ...names] });
    scratch.push(tls.dir);
    const berth = await startBerth({
      host: '0.0.0.0',
      port: BERTH_PORT,
      urlHost: netns.address,
      netns,
      externalUrl: [...TOPOLOGIES.map((spec) => topologyExternalURL(spec, domain)), `http://${netns.address}:${BERTH_PORT}`],
      registry,
    });
    scratch.push(berth.dataDir, path.dirname(berth.logFile));
    const ref = await startReferenceRegistry({ port: REF_PORT, netns, registry });
    scratch.push(ref.dir);
    rememberSecret(ref.password, ref.username);
    const httpSecret = /secret: "([^"]+)"/.exec(await readFile(ref.configFile, 'utf8'))?.[1];
    rememberSecret(httpSecret);
    const context = { netns, domain, tls, berthUpstream: `http://127.0.0.1:${BERTH_PORT}`, refUpstream: `http://127.0.0.1:${REF_PORT}`, registry };
    const topologies: Topology[] = [];
    for (const spec of TOPOLOGIES) {
      const topology = await startTopology(spec, context);
      topologies.push(topology);
      scratch.push(...topology.nginx.map((n) => n.prefix));
    }
    const dockerd = await startDockerd({ registry, insecureRegistries: [netns.lanCidr] });

    const plans: Plan[] = [{ name: 'lan.berth.ctr', registry: 'berth', client: 'ctr' }];
    for (const t of topologies) {
      for (const reg of ['berth', 'ref'] as const) plans.push({ name: `${t.name}.${reg}.ctr`, topology: t, registry: reg, client: 'ctr' });
      if (t.spec.id === 2) {
        // containerd uploads the layers side by side; what the siblings of the upload that lost its
        // credentials log (401, 400, 499, nothing) varies from run to run, so this case is taken thrice.
        for (const run of [2, 3]) plans.push({ name: `${t.name}.ref.ctr-${run}`, topology: t, registry: 'ref', client: 'ctr' });
        for (const reg of ['berth', 'ref'] as const) {
          for (const client of ['docker', 'skopeo'] as const) plans.push({ name: `${t.name}.${reg}.${client}`, topology: t, registry: reg, client });
        }
      }
    }

    // Written aside and moved into place only when every case agrees with its topology.
    const work = `${out}.partial`;
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    const cases: CorpusCase[] = [];
    for (const plan of plans) {
      const t = plan.topology;
      const want = t ? expectedPush(t.spec.id, plan.registry, plan.client) : { outcome: 'pass' as const, why: 'no proxy: the client talks to Berth on its LAN address over plain HTTP' };
      const where = t ? (plan.registry === 'ref' ? `ref-${t.name}` : t.name) : 'lan';
      const target: RegistryTarget = {
        registryHost: t ? (plan.registry === 'ref' ? t.refHost : t.berthHost) : `${netns.address}:${BERTH_PORT}`,
        username: plan.registry === 'ref' ? ref.username : 'admin',
        password: plan.registry === 'ref' ? ref.password : berth.adminPassword,
        repository: `matrix/${where}-${plan.name.split('.').at(-1)}`,
        tag: `t${Date.now()}`,
        tls: t ? t.clientTls : 'plain',
      };
      const sources: Source[] = [];
      for (const [i, nginx] of (t?.nginx ?? []).entries()) {
        sources.push({ name: `nginx${i}-access.log`, file: nginx.combinedLog, kind: 'access', offset: 0 });
        sources.push({ name: `nginx${i}-error.log`, file: nginx.errorLog, kind: 'error', offset: 0 });
      }
      sources.push(plan.registry === 'ref'
        ? { name: 'registry.log', file: ref.logFile, kind: 'registry', offset: 0 }
        : { name: 'berth.log', file: berth.logFile, kind: 'registry', offset: 0 });
      for (const s of sources) s.offset = await sizeOf(s.file);
      const evidenceLogs = await Promise.all((t?.nginx ?? []).map(async (n) => ({ file: n.accessLog, offset: await sizeOf(n.accessLog) })));

      const image = await createRandomImage({ layerSizes: LAYER_SIZES });
      let run: ClientRun | undefined;
      let failure: ClientFailure | undefined;
      try {
        const bound = want.outcome === 'pass' ? {} : { timeoutMs: FAILING_PUSH_TIMEOUT_MS };
        if (plan.client === 'docker') run = await pushPullDocker(target, image, { dockerEnv: dockerd.env, ...bound });
        else if (plan.client === 'ctr') run = await pushPullCtr(target, image, { containerdSocket: dockerd.containerdSocket, ...bound });
        else run = await pushPullSkopeo(target, image, bound);
      } catch (error) {
        if (!(error instanceof ClientFailure)) throw error;
        failure = error;
      } finally {
        await rm(image.dir, { recursive: true, force: true });
      }
      await sleep(SETTLE_MS);

      const first = failure?.transcript.find((r) => r.code !== 0 || r.timedOut);
      const atPush = !!first && / (images push|push|copy --dest-creds) /.test(` ${first.commandLine} `);
      const said = first
        ? first.timedOut
          ? `hung (killed after ${FAILING_PUSH_TIMEOUT_MS / 1000} s)`
          : redactUploadState(stripAnsi(first.stderr).trim().split('\n').filter(Boolean).slice(-2).join(' | ')).slice(0, 400)
        : undefined;
      const expected = want.outcome === 'pass' ? 'OK' : want.outcome;
      if (want.outcome === 'pass' ? !run : !(failure && atPush)) {
        problems.push(`${plan.name}: the topology says ${expected}, but the ${plan.client} push ${run ? 'passed' : `failed at ${first?.commandLine ?? '?'}: ${said}`}`);
        console.log(`SKIP ${problems.at(-1)}`);
        continue;
      }
      const evidence = t && want.outcome !== 'pass' ? failureEvidence(t, plan.registry, plan.client) : undefined;
      let proxyEvidence: string | undefined;
      if (t && want.outcome !== 'pass') {
        const seen = (await Promise.all(evidenceLogs.map((l) => readFrom(l.file, l.offset)))).join('\n').split('\n');
        proxyEvidence = seen.find((line) => evidence?.test(line));
        if (!proxyEvidence) {
          problems.push(`${plan.name}: the push failed (${said}), but the proxy's access log lacks ${evidence ?? 'any stated evidence'}:\n    ${seen.join('\n    ')}`);
          console.log(`SKIP ${problems.at(-1)}`);
          continue;
        }
      }
      const dir = path.join(work, plan.name);
      await mkdir(dir, { recursive: true });
      const files: string[] = [];
      const scanner = new LeakScanner(`corpus case ${plan.name}`);
      for (const s of sources) {
        const text = trimToPush(await readFrom(s.file, s.offset), s.kind, !!run);
        if (!text) continue;
        for (const line of text.split('\n')) {
          scanner.scan(line, s.name);
          if (/eyJ[\w-]{8,}\.[\w-]{8,}/.test(line) || /Bearer ey|Basic [A-Za-z0-9+/=]{12,}/.test(line)) {
            throw new Error(`${plan.name}/${s.name}: a line looks like it holds a token: ${line.slice(0, 200)}`);
          }
        }
        await writeFile(path.join(dir, s.name), `${text}\n`);
        files.push(s.name);
      }
      scanner.assertClean();
      const entry: CorpusCase = {
        name: plan.name,
        ...(t ? { topology: { id: t.spec.id, slug: t.spec.slug, summary: t.spec.summary } } : {}),
        registry: plan.registry,
        client: plan.client,
        repository: target.repository,
        files,
        expected,
        why: want.why,
        push: run ? 'pass' : 'failed',
        ...(said ? { clientSaid: said } : {}),
        ...(proxyEvidence ? { proxyEvidence: redactUploadState(proxyEvidence) } : {}),
      };
      cases.push(entry);
      console.log(`${plan.name.padEnd(44)} expected ${expected.padEnd(3)} push ${entry.push}${said ? `: ${said.slice(0, 160)}` : ''}`);
    }
    const manifest = {
      about: 'Real logs of pushes through the proxy matrix (test/support/capture-logs.ts). `expected` comes from the topology (PUSH_EXPECTATIONS in test/support/topologies.ts), never from the explainer; `push` is what the client itself reported.',
      captured: new Date().toISOString().slice(0, 10),
      domain,
      cases,
    };
    const scanner = new LeakScanner('corpus manifest');
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    for (const line of manifestText.split('\n')) scanner.scan(line, 'manifest.json');
    scanner.assertClean();
    await writeFile(path.join(work, 'manifest.json'), manifestText);
    if (problems.length) {
      console.log(`left ${cases.length} cases in ${work}; ${out} is unchanged`);
    } else {
      await rm(out, { recursive: true, force: true });
      await rename(work, out);
      console.log(`wrote ${cases.length} cases to ${out}`);
    }
  } finally {
    await registry.stopAllAndClean(scratch, false);
  }
  if (problems.length) {
    console.error(`${problems.length} case(s) not written, their pushes contradict the topology:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}

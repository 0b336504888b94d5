// `berth doctor`: walks the real push/pull protocol against any registry and names what breaks.
import type { Credentials } from './auth.ts';
import { probeBodies } from './body.ts';
import { MECHANISM_NAMES, PRIORITY } from './findings.ts';
import { Recorder } from './recorder.ts';
import { parseTarget } from './urls.ts';
import { type WalkEnd, authenticate, cleanup, echo, makeProbeImage, ping, pull, push } from './walk.ts';
import type { DoctorOptions, DoctorReport, Finding } from './types.ts';

export type { DoctorOptions, DoctorReport, Finding, Step, Exchange, ClientFamily } from './types.ts';
export { CLIENT_NAMES } from './types.ts';
export { MECHANISM_NAMES } from './findings.ts';

export const DEFAULT_REPOSITORY = 'berth-doctor/probe';
export const DEFAULT_MAX_BODY = 4 * 1024 ** 2;
const SKEW_LIMIT_SECONDS = 60;

function credentials(options: DoctorOptions): Credentials | undefined {
  if (options.token !== undefined) return { username: options.username ?? 'berth-doctor', password: options.token };
  if (options.username !== undefined && options.password !== undefined) return { username: options.username, password: options.password };
  return undefined;
}

/** The finding a conclusion names: the problem earliest in {@link PRIORITY}. */
export function mainFinding(findings: readonly Finding[]): Finding | undefined {
  const problems = findings.filter((f) => f.severity === 'problem');
  return [...problems].sort((a, b) => PRIORITY.indexOf(a.mechanism) - PRIORITY.indexOf(b.mechanism))[0];
}

/**
 * Runs the whole walk and returns the report; never throws for registry behaviour (only for an
 * unparseable URL). Exit code: 0 healthy, 1 a problem found, 2 the push could not be tested.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const target = parseTarget(options.url);
  const rec = new Recorder(target, { insecure: options.insecure, ca: options.ca, timeoutMs: options.timeoutMs ?? 30_000 });
  const repo = options.repository ?? DEFAULT_REPOSITORY;
  const creds = credentials(options);
  const image = makeProbeImage();
  const tag = `doctor-${Date.now()}`;

  let end: WalkEnd = await ping(rec);
  if (end === 'done') {
    await echo(rec, 'echo', false);
    end = await authenticate(rec, repo, image, creds);
  }
  let pushed = false;
  // Berth's echo settles whether credentials arrive (M5), even when the login already failed.
  if (end !== 'untestable' && rec.info.kind === 'berth' && rec.authorization) await echo(rec, 'echo-auth', true);
  if (end === 'done') {
    pushed = await push(rec, repo, image, tag);
    if (pushed) await pull(rec, repo, image, tag);
    await probeBodies(rec, repo, options.maxBody ?? DEFAULT_MAX_BODY);
    if (pushed) await cleanup(rec, repo, image, creds);
  }
  const skew = rec.info.clockSkewSeconds;
  if (skew !== undefined && Math.abs(skew) > SKEW_LIMIT_SECONDS) {
    rec.add({ mechanism: 'M9', severity: 'warning', title: `clock skew of ${skew}s between this machine and the registry`, evidence: [`server Date vs local clock: ${skew}s`], fix: 'Run NTP (chrony/systemd-timesyncd) on the registry, the token service and clients: tokens are judged by their issued/expiry times.', clients: ['containerd', 'docker', 'containers-image'] });
  }
  return conclude(options.url, rec, end, pushed);
}

function conclude(typed: string, rec: Recorder, end: WalkEnd, pushed: boolean): DoctorReport {
  const main = mainFinding(rec.findings);
  let exitCode: 0 | 1 | 2;
  let verdict: string;
  if (end === 'untestable' && (!main || main.mechanism === 'AUTH')) {
    exitCode = 2;
    const last = [...rec.steps].reverse().find((s) => s.ok === false);
    verdict = `could not test: ${main?.title ?? last?.note ?? 'the walk stopped early'}`;
  } else if (main) {
    exitCode = end === 'untestable' && (main.mechanism === 'TLS' || main.mechanism === 'NET') ? 2 : 1;
    verdict = `${main.mechanism} (${MECHANISM_NAMES[main.mechanism]}): ${main.title}. Fix: ${main.fix}`;
  } else if (!pushed) {
    exitCode = 1;
    const failed = rec.steps.find((s) => s.ok === false);
    verdict = `the push failed at "${failed?.title ?? 'an unknown step'}"${failed?.note ? ` (${failed.note})` : ''}, for a reason the doctor cannot name`;
  } else {
    exitCode = 0;
    const warnings = rec.findings.filter((f) => f.severity === 'warning').length;
    verdict = `healthy: push, pull and cleanup work as containerd, Docker and containers/image do them${warnings ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}`;
  }
  return { target: typed, registry: rec.info, steps: rec.steps, findings: rec.findings, verdict, exitCode };
}

// `berth doctor`: walks the real push/pull protocol against any registry and names what breaks.
import { type Credentials, basicHeader } from './auth.ts';
import { probeBodies } from './body.ts';
import { cleanup, nothingMade, surveyBerth } from './cleanup.ts';
import { MECHANISM_NAMES, PRIORITY, cleanupFinding } from './findings.ts';
import { Recorder } from './recorder.ts';
import { parseTarget } from './urls.ts';
import { type WalkEnd, authenticate, echo, makeProbeImage, ping, pull, push } from './walk.ts';
import type { CleanupReport, DoctorOptions, DoctorReport, Finding } from './types.ts';

export type { CleanupReport, DoctorOptions, DoctorReport, Finding, LeftBehind, Step, Exchange, ClientFamily } from './types.ts';
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

/** How the management API is called with the run's credentials: a personal access token as Bearer, else Basic. */
function apiAuthorization(creds: Credentials | undefined): string | undefined {
  if (!creds) return undefined;
  return creds.password.startsWith('berth_pat_') ? `Bearer ${creds.password}` : basicHeader(creds);
}

/**
 * Runs the whole walk and returns the report; never throws for registry behaviour (only for an
 * unparseable URL). Whatever the run stored is deleted again at the end; what could not be is in
 * `report.cleanup.leftBehind`. Exit code: 0 healthy, 1 a problem found (a probe left behind
 * included), 2 the push could not be tested (no connection, TLS, credentials refused, or the
 * account may not push to the repository).
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const target = parseTarget(options.url);
  const rec = new Recorder(target, { insecure: options.insecure, ca: options.ca, timeoutMs: options.timeoutMs ?? 30_000 });
  const repo = options.repository ?? DEFAULT_REPOSITORY;
  const creds = credentials(options);
  rec.repository = repo;
  rec.username = creds?.username;
  const image = makeProbeImage();
  const tag = `doctor-${Date.now()}`;
  const made = nothingMade();
  const api = apiAuthorization(creds);

  let end: WalkEnd = await ping(rec);
  if (end === 'done') {
    await echo(rec, 'echo', false);
    end = await authenticate(rec, repo, image, creds);
  }
  let pushed = false;
  // Berth's echo settles whether credentials arrive (M5), even when the login already failed.
  if (end !== 'untestable' && rec.info.kind === 'berth' && rec.authorization) await echo(rec, 'echo-auth', true);
  if (end === 'done') {
    if (rec.info.kind === 'berth' && api) await surveyBerth(rec, repo, made, api);
    pushed = await push(rec, repo, image, tag, made);
    if (pushed) await pull(rec, repo, image, tag);
    // An account that may not push here cannot test anything more: the body probe would be refused too.
    if (rec.has('DENIED')) end = 'untestable';
    else await probeBodies(rec, repo, options.maxBody ?? DEFAULT_MAX_BODY, made);
  }
  const tidy = await cleanup(rec, repo, made, creds, api);
  if (tidy.leftBehind.length > 0) {
    const manifestLeft = made.manifest && tidy.leftBehind.some((l) => l.what.includes(made.manifest!.digest)) ? made.manifest.digest : undefined;
    rec.add(cleanupFinding(tidy.leftBehind, {
      repository: repo, kind: rec.info.kind, manifestDigest: manifestLeft,
      repositoryCreated: made.stored && made.repositoryExisted === false, projectCreated: made.stored && made.projectExisted === false,
    }));
  }
  const skew = rec.info.clockSkewSeconds;
  if (skew !== undefined && Math.abs(skew) > SKEW_LIMIT_SECONDS) {
    rec.add({ mechanism: 'M9', severity: 'warning', title: `clock skew of ${skew}s between this machine and the registry`, evidence: [`server Date vs local clock: ${skew}s`], fix: 'Run NTP (chrony/systemd-timesyncd) on the registry, the token service and clients: tokens are judged by their issued/expiry times.', clients: ['containerd', 'docker', 'containers-image'] });
  }
  return conclude(options.url, rec, end, pushed, tidy);
}

/** ` Also left behind: a; b (see CLEANUP).` for a verdict whose main cause is something else. */
function leftNote(tidy: CleanupReport): string {
  return tidy.leftBehind.length === 0 ? '' : ` Also left behind: ${tidy.leftBehind.map((l) => l.what).join('; ')} (see CLEANUP).`;
}

function conclude(typed: string, rec: Recorder, end: WalkEnd, pushed: boolean, tidy: CleanupReport): DoctorReport {
  const main = mainFinding(rec.findings);
  let exitCode: 0 | 1 | 2;
  let verdict: string;
  const untestable = end === 'untestable' && (!main || main.mechanism === 'AUTH' || main.mechanism === 'DENIED' || main.mechanism === 'CLEANUP');
  if (untestable) {
    exitCode = 2;
    const last = [...rec.steps].reverse().find((s) => s.ok === false);
    const cause = main && main.mechanism !== 'CLEANUP' ? main : undefined;
    verdict = `could not test: ${cause ? `${cause.title}. Fix: ${cause.fix}` : (last?.note ?? 'the walk stopped early')}${leftNote(tidy)}`;
  } else if (main?.mechanism === 'CLEANUP' && pushed) {
    exitCode = 1;
    const [first, ...more] = tidy.leftBehind;
    verdict = `push and pull work, but the doctor left behind what it could not delete: ${tidy.leftBehind.map((l) => l.what).join('; ')} — ${first!.why}` +
      `${more.length ? ' (each with its reason under CLEANUP above)' : ''}. Fix: ${main.fix}`;
  } else if (main && main.mechanism !== 'CLEANUP') {
    exitCode = end === 'untestable' && (main.mechanism === 'TLS' || main.mechanism === 'NET') ? 2 : 1;
    verdict = `${main.mechanism} (${MECHANISM_NAMES[main.mechanism]}): ${main.title}. Fix: ${main.fix}${leftNote(tidy)}`;
  } else if (!pushed) {
    exitCode = 1;
    const failed = rec.steps.find((s) => s.ok === false);
    verdict = `the push failed at "${failed?.title ?? 'an unknown step'}"${failed?.note ? ` (${failed.note})` : ''}, for a reason the doctor cannot name${leftNote(tidy)}`;
  } else {
    exitCode = 0;
    const warnings = rec.findings.filter((f) => f.severity === 'warning').length;
    verdict = `healthy: push, pull and cleanup work as containerd, Docker and containers/image do them${warnings ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}`;
  }
  return { target: typed, registry: rec.info, steps: rec.steps, findings: rec.findings, cleanup: tidy, verdict, exitCode };
}

// What the doctor made on the registry, and deleting every bit of it again at the end of the run.
import { type Credentials, fetchToken, grantText } from './auth.ts';
import { findChallenge } from './challenge.ts';
import { type Recorder, inform, ociErrorCode, ociErrorText } from './recorder.ts';
import { resolveReference } from './urls.ts';
import type { CleanupReport, Exchange, LeftBehind } from './types.ts';
import { projectOf } from '../../domain/names.ts';

/** Everything a run made, recorded as it is made; {@link cleanup} deletes it. */
export interface Made {
  /** Blobs uploaded that the repository did not hold before (a blob it held stays: others use it). */
  readonly blobs: { readonly digest: string; readonly what: string }[];
  /** The manifest pushed, with its tag. */
  manifest?: { readonly digest: string; readonly tag: string };
  /** Upload sessions opened and neither completed nor cancelled (URLs on the typed origin). */
  readonly uploads: string[];
  /** Whether any upload or manifest completed: on Berth that creates the repository and project. */
  stored: boolean;
  /** Berth: whether the project and repository existed before the run; undefined when unknown. */
  projectExisted?: boolean;
  repositoryExisted?: boolean;
  /** Berth: why the management API could not tell, when it could not. */
  surveyFailure?: string;
}

export function nothingMade(): Made {
  return { blobs: [], uploads: [], stored: false };
}

/** A Location (absolute or relative) as a URL on the typed origin, as the doctor sends follow-ups. */
export function onTypedOrigin(rec: Recorder, reference: string, from: string): string {
  const parsed = new URL(resolveReference(reference, from).url);
  return `${rec.target.base}${parsed.pathname}${parsed.search}`;
}

/** `200` → true, Berth's own `404 NOT_FOUND` → false, anything else (a proxy's 404 page, 401…) → unknown. */
function existence(ex: Exchange): boolean | undefined {
  if (ex.status === 200) return true;
  if (ex.status === 404 && ociErrorCode(ex) === 'NOT_FOUND') return false;
  return undefined;
}

/** `403 DENIED: requested access to the resource is denied`, or node's error code. */
function refusal(ex: Exchange): string {
  if (ex.error) return `${ex.error.code}: ${ex.error.message}`;
  const text = ociErrorText(ex);
  return `${ex.status}${text ? ` ${text}` : ''}`;
}

/**
 * Berth only: asks the management API, before anything is pushed, whether the probe's project and
 * repository exist, so that the end of the run deletes exactly those it created (an administrator's
 * push creates a missing project) and never one that was there before.
 */
export async function surveyBerth(rec: Recorder, repo: string, made: Made, apiAuthorization: string): Promise<void> {
  const project = projectOf(repo);
  const p = await rec.request('api-project', `Berth API: project ${project} before the push`, { method: 'GET', url: rec.url(`/api/v1/projects/${project}`), authorization: apiAuthorization }, inform);
  made.projectExisted = existence(p);
  if (made.projectExisted === undefined) made.surveyFailure = `GET /api/v1/projects/${project} answered ${refusal(p)}`;
  if (made.projectExisted === false) {
    made.repositoryExisted = false;
    return;
  }
  const r = await rec.request('api-repository', `Berth API: repository ${repo} before the push`, { method: 'GET', url: rec.url(`/api/v1/repositories/${repo}/artifacts?pageSize=1`), authorization: apiAuthorization }, inform);
  made.repositoryExisted = existence(r);
  if (made.repositoryExisted === undefined) made.surveyFailure ??= `GET /api/v1/repositories/${repo}/artifacts answered ${refusal(r)}`;
}

/**
 * Deletes what the run made: unfinished upload sessions, the manifest by digest (its tag goes with
 * it), the blobs it uploaded, and on Berth the repository and project when the run created them.
 * A Bearer 401 asks for the `delete` action, which the push token lacks: one token is fetched for
 * the scope the challenge names. Never throws; every refusal is returned with its reason.
 */
export async function cleanup(rec: Recorder, repo: string, made: Made, creds: Credentials | undefined, apiAuthorization: string | undefined): Promise<CleanupReport> {
  const removed: string[] = [];
  const left: LeftBehind[] = [];
  let rescoped = false;

  const remove = async (id: string, title: string, url: string, authorization: () => string | undefined, gone: (ex: Exchange) => boolean = () => false): Promise<Exchange> => {
    const verdict = (e: Exchange): { ok: boolean | null; note?: string } => {
      if (e.status === 202 || e.status === 204 || gone(e)) return { ok: true };
      if (e.status === 401 && !rescoped && findChallenge(e.headers['www-authenticate'], 'bearer') && authorization() === rec.authorization) {
        return { ok: null, note: 'the push token does not grant delete: clients ask for one that does' };
      }
      if (e.status === 405 || ociErrorCode(e) === 'UNSUPPORTED') return { ok: false, note: 'deletes are disabled on this registry' };
      return { ok: false };
    };
    let ex = await rec.request(id, title, { method: 'DELETE', url, authorization: authorization() }, verdict);
    const challenge = findChallenge(ex.headers['www-authenticate'], 'bearer');
    if (ex.status === 401 && challenge && !rescoped && authorization() === rec.authorization) {
      rescoped = true;
      const scope = challenge.params['scope'] ?? `repository:${repo}:delete`;
      if (await fetchToken(rec, ex.headers['www-authenticate']!, scope, creds)) {
        ex = await rec.request(`${id}-rescoped`, `${title} (token for ${scope})`, { method: 'DELETE', url, authorization: authorization() }, verdict);
      }
    }
    return ex;
  };
  const why = (ex: Exchange): string => {
    if (ex.status === 405 || ociErrorCode(ex) === 'UNSUPPORTED') return `${refusal(ex)}: deletes are disabled on this registry`;
    const scope = findChallenge(ex.headers['www-authenticate'], 'bearer')?.params['error'] === 'insufficient_scope' && rec.tokenAccess ? `; ${grantText(rec.tokenAccess)}` : '';
    return `DELETE answered ${refusal(ex)}${scope}`;
  };
  const deleted = (ex: Exchange): boolean => ex.status === 202 || ex.status === 204;

  for (const [i, url] of made.uploads.entries()) {
    const ex = await remove(`delete-upload-${i + 1}`, 'DELETE unfinished upload session', url, () => rec.authorization, (e) => e.status === 404);
    const what = `an unfinished upload session ${new URL(url).pathname} in ${repo}`;
    if (deleted(ex)) removed.push(what);
    else if (ex.status === 404) removed.push(`${what} (already gone)`);
    else left.push({ what, why: `${why(ex)} (upload sessions also expire on their own)` });
  }

  let manifestStays = false;
  if (made.manifest) {
    const { digest, tag } = made.manifest;
    const ex = await remove('delete-manifest', 'DELETE manifest by digest', rec.url(`/v2/${repo}/manifests/${digest}`), () => rec.authorization);
    const what = `manifest ${repo}@${digest} (tag ${tag})`;
    if (deleted(ex)) removed.push(what);
    else {
      manifestStays = true;
      left.push({ what, why: why(ex) });
    }
  }
  for (const blob of made.blobs) {
    const what = `${blob.what} blob ${blob.digest} in ${repo}`;
    if (manifestStays) {
      left.push({ what, why: 'kept: the manifest that references it could not be deleted' });
      continue;
    }
    const ex = await remove(`delete-${blob.what}`, `DELETE ${blob.what} blob`, rec.url(`/v2/${repo}/blobs/${blob.digest}`), () => rec.authorization);
    if (deleted(ex)) removed.push(what);
    else left.push({ what, why: why(ex) });
  }

  // Berth keeps the repository (and an administrator's push creates the project): remove what this run created.
  if (made.stored && apiAuthorization && (made.repositoryExisted === false || made.projectExisted === false)) {
    const project = projectOf(repo);
    const api = () => apiAuthorization;
    if (made.repositoryExisted === false) {
      const ex = await remove('delete-repository', `Berth API: DELETE repository ${repo}`, rec.url(`/api/v1/repositories/${repo}`), api, (e) => e.status === 404);
      if (deleted(ex)) removed.push(`repository ${repo}`);
      else if (ex.status !== 404) left.push({ what: `repository ${repo}${left.length === 0 ? ' (empty)' : ''}`, why: `Berth API ${why(ex)}` });
    }
    if (made.projectExisted === false) {
      const ex = await remove('delete-project', `Berth API: DELETE project ${project}`, rec.url(`/api/v1/projects/${project}`), api, (e) => e.status === 404);
      if (deleted(ex)) removed.push(`project ${project}`);
      else if (ex.status !== 404) left.push({ what: `project ${project}, created by this run`, why: `Berth API ${why(ex)}` });
    }
  } else if (made.stored && made.surveyFailure && (made.repositoryExisted === undefined || made.projectExisted === undefined)) {
    left.push({
      what: `repository ${repo} and project ${projectOf(repo)}, if this run created them`,
      why: `the doctor could not ask Berth's management API whether they existed before (${made.surveyFailure}), so it did not delete them`,
    });
  }
  return { removed, leftBehind: left };
}

/**
 * Quota refusals. Berth (like most registries) answers a push that would exceed its project's
 * storage quota with 403 DENIED — the same code as a missing permission — so the access log's
 * `"error":"DENIED"` alone reads like a role problem. Berth's line carries
 * `diagnosis: {code:"quota-exceeded", project, quotaBytes, usageBytes, sizeBytes, message}`; older
 * lines have only the refusal's text, `quota exceeded: project "team" uses U of Q bytes; storing
 * sha256:… (S bytes) …`, from which the same figures are read.
 */
import type { LogEvent } from './event.ts';
import { projectOf } from '../../domain/names.ts';

export interface QuotaRefusal {
  project?: string;
  quotaBytes?: number;
  usageBytes?: number;
  sizeBytes?: number;
}

const QUOTA_TEXT = /^\s*(?:DENIED:\s*)?quota exceeded\b/i;

/** The texts a line attached to its outcome, each checked on its own (a code, a message…). */
function texts(e: LogEvent): string[] {
  return [e.diagnosis?.code, e.diagnosis?.message, e.error, e.message].filter((t): t is string => !!t);
}

/** Is this line a quota refusal (Berth's diagnosis, or a refusal whose text starts "quota exceeded")? */
export function isQuotaRefusal(e: LogEvent): boolean {
  if (e.diagnosis?.code === 'quota-exceeded') return true;
  // Folded Distribution messages are `first; second`: look at each part.
  return texts(e).some((t) => t.split(/;\s+(?=\S)/).some((part) => QUOTA_TEXT.test(part)));
}

/** The figures of a refusal: the diagnosis' fields, else what its text states. */
export function quotaFigures(lines: LogEvent[]): QuotaRefusal {
  const out: QuotaRefusal = {};
  for (const e of lines) {
    const d = e.diagnosis;
    out.project ??= d?.project;
    out.quotaBytes ??= d?.quotaBytes;
    out.usageBytes ??= d?.usageBytes;
    out.sizeBytes ??= d?.sizeBytes;
    for (const t of texts(e)) {
      const m = /project "([^"]+)" uses (\d+) of (\d+) bytes/.exec(t);
      if (m) {
        out.project ??= m[1];
        out.usageBytes ??= Number(m[2]);
        out.quotaBytes ??= Number(m[3]);
      }
      const size = /\((\d+) bytes\)/.exec(t);
      if (size) out.sizeBytes ??= Number(size[1]);
    }
  }
  return out;
}

/** `1400000` → `1.3 MiB (1400000 bytes)`. */
export function bytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]} (${n} bytes)`;
}

/** Title, explanation and fixes for a quota refusal, in the explainer's words. */
export function quotaWords(q: QuotaRefusal, request: string, repository: string | undefined): { title: string; explanation: string; fix: string[] } {
  const project = q.project ?? (repository === undefined ? undefined : projectOf(repository));
  const named = project ? `project "${project}"` : 'the project';
  const figures = q.usageBytes !== undefined && q.quotaBytes !== undefined
    ? `it uses ${bytes(q.usageBytes)} of its ${bytes(q.quotaBytes)} quota`
    : q.quotaBytes !== undefined ? `its quota is ${bytes(q.quotaBytes)}` : undefined;
  const total = q.sizeBytes !== undefined && q.usageBytes !== undefined ? q.usageBytes + q.sizeBytes : undefined;
  const need = q.sizeBytes !== undefined ? `storing ${bytes(q.sizeBytes)} more` : 'storing this upload';
  return {
    title: `Storage quota exceeded in ${named}: ${request} refused${q.usageBytes !== undefined && q.quotaBytes !== undefined ? ` (${q.usageBytes} of ${q.quotaBytes} bytes used${q.sizeBytes !== undefined ? `, ${q.sizeBytes} more needed` : ''})` : ''}`,
    explanation: `The registry refused the push because ${named} is out of space: ${figures ? `${figures}; ` : ''}${need} would ${total !== undefined ? `bring it to ${bytes(total)}, over the quota` : 'exceed the quota'}. `
      + 'The refusal travels as 403 DENIED, the same code as a missing permission, so clients print "denied"; but the account was let in and its permissions are not the cause — granting roles will not help.',
    fix: [
      `raise the quota of ${named}: \`berth project update ${project ?? '<project>'} --quota ${total !== undefined ? quotaToFit(total) : '<size>'}\`${total !== undefined ? ' (room for this blob alone: leave more for the rest of the image and the next pushes)' : ''}, or \`--quota unlimited\``,
      `delete tags and artifacts of ${named} that are no longer needed (the space is returned once garbage collection has removed their bytes), then push again`,
      'or push the image into another project that has room (`<registry>/<other project>/<name>:<tag>`)',
    ],
  };
}

/** The smallest whole MiB (GiB from 1 GiB on) that holds `n` bytes, as `--quota` takes it. */
function quotaToFit(n: number): string {
  const gib = 1024 ** 3;
  return n >= gib ? `${Math.ceil(n / gib)}GiB` : `${Math.max(1, Math.ceil(n / 1024 ** 2))}MiB`;
}

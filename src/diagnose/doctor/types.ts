// Shared shapes of `berth doctor`: what it is asked, what it records, what it concludes.

/** The client families whose credential and URL rules differ (PROXIES.md, "Headers, as clients see them"). */
export type ClientFamily = 'containerd' | 'docker' | 'containers-image';

/** Human names of the families, for findings and the table. */
export const CLIENT_NAMES: Record<ClientFamily, string> = {
  containerd: 'containerd (Docker ≥ 25 with the containerd image store, nerdctl, BuildKit, ctr)',
  docker: 'classic Docker engine (docker push/pull without the containerd store)',
  'containers-image': 'containers/image (podman, skopeo, buildah)',
};

/** What `runDoctor` is asked to do. */
export interface DoctorOptions {
  /** The registry URL as the user typed it, e.g. `https://hub.example.com` (no scheme means https). */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  /** A bearer/PAT: used as the password of the token flow (username defaults to `berth-doctor`). */
  readonly token?: string;
  /** Repository to push the probe image to; default `berth-doctor/probe`. */
  readonly repository?: string;
  /** Largest PATCH body to try while looking for body limits, in bytes; default 4 MiB. */
  readonly maxBody?: number;
  /** Skip TLS certificate verification. */
  readonly insecure?: boolean;
  /** PEM CA bundle to trust (contents, not the path). */
  readonly ca?: string;
  /** Per-request timeout in milliseconds; default 30 s. */
  readonly timeoutMs?: number;
}

/** The kind of Authorization header a request carried. */
export type AuthKind = 'none' | 'basic' | 'bearer';

/** One HTTP request and what came back (or the error that stopped it). */
export interface Exchange {
  readonly method: string;
  readonly url: string;
  readonly auth: AuthKind;
  /** Bytes of request body sent (declared or streamed). */
  readonly bodyBytes: number;
  readonly chunked: boolean;
  readonly status?: number;
  /** Response headers, lower-case names, repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** First few KiB of the response body as text. */
  readonly body?: string;
  /** Digest and length of the whole response body. */
  readonly bodyDigest?: string;
  readonly bodyLength?: number;
  readonly durationMs: number;
  /** Set when no response arrived: node's error code (ECONNREFUSED, CERT_HAS_EXPIRED, ETIMEDOUT…). */
  readonly error?: { readonly code: string; readonly message: string };
  /** Local clock when the response headers arrived. */
  readonly receivedAt?: number;
}

/** One row of the walk. */
export interface Step {
  /** Short machine name, e.g. `ping`, `token-post`, `patch-as-containerd`. */
  readonly id: string;
  readonly title: string;
  readonly exchange?: Exchange;
  /** true: as a healthy registry answers; false: a failure; null: informational. */
  readonly ok: boolean | null;
  readonly note?: string;
}

/**
 * M-ids of PROXIES.md, plus TLS/connectivity and credential problems the walk finds first,
 * `DENIED` (the credentials work but may not push to the probe repository) and `CLEANUP` (what the
 * doctor made could not all be deleted again).
 */
export type MechanismId = 'M1' | 'M2' | 'M3' | 'M4' | 'M5' | 'M6' | 'M7' | 'M8' | 'M9' | 'M10' | 'M11' | 'TLS' | 'NET' | 'AUTH' | 'DENIED' | 'CLEANUP';

/** A conclusion: a problem (exit 1), a warning or a note (exit 0). */
export interface Finding {
  readonly mechanism: MechanismId;
  readonly severity: 'problem' | 'warning' | 'info';
  readonly title: string;
  /** The steps and headers that show it. */
  readonly evidence: readonly string[];
  /** The exact change that cures it. */
  readonly fix: string;
  /** Families that fail because of it. */
  readonly clients: readonly ClientFamily[];
}

/** What is known about the registry. */
export interface RegistryInfo {
  kind: 'berth' | 'distribution' | 'unknown';
  version?: string;
  /** `Bearer`, `Basic`, or `none` (GET /v2/ answered 200). */
  auth?: 'bearer' | 'basic' | 'none' | 'other';
  realm?: string;
  service?: string;
  tokenExpiresIn?: number;
  /** Measured upload speed during the body probe, bytes per second. */
  uploadBytesPerSecond?: number;
  /** Largest PATCH body that passed and smallest that failed. */
  bodyLimit?: { largestPassed?: number; firstFailed?: number };
  /** Server Date minus local clock, seconds. */
  clockSkewSeconds?: number;
  /** Berth only: its configured `externalURL`s, as its echo endpoint reports them. */
  externalURLs?: string[];
}

/** Something the doctor made and could not delete again, and why. */
export interface LeftBehind {
  /** What it is, with names and digests, e.g. `manifest team/app@sha256:… (tag doctor-1)`. */
  readonly what: string;
  /** Why it stayed: the status and error of the refused deletion. */
  readonly why: string;
}

/** What the doctor made on the registry and what became of it. */
export interface CleanupReport {
  /** Everything deleted again, one entry each. */
  readonly removed: readonly string[];
  /** Everything that stayed; any entry makes the run not healthy (exit 1). */
  readonly leftBehind: readonly LeftBehind[];
}

/** The whole result; `--json` prints exactly this. */
export interface DoctorReport {
  readonly target: string;
  readonly registry: RegistryInfo;
  readonly steps: readonly Step[];
  readonly findings: readonly Finding[];
  readonly cleanup: CleanupReport;
  readonly verdict: string;
  /** 0 healthy, 1 problem found (a probe left behind included), 2 could not test. */
  readonly exitCode: 0 | 1 | 2;
}

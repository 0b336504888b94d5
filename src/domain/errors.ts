/**
 * Every error a client can see, declared once with its HTTP status. The OCI distribution spec's
 * codes come first; the few Berth adds (pagination, range, internal) follow CNCF Distribution's names;
 * the management API adds INVALID and CONFLICT, in the same envelope.
 * Registry code throws `RegistryError`; the HTTP layer alone turns it into the OCI error envelope.
 */
export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  NOT_FOUND: { status: 404, message: 'no such endpoint' },
  /** Management API: a request body, query or path parameter failed validation (`detail.fields` names them). */
  INVALID: { status: 400, message: 'invalid request' },
  /** Management API: the change conflicts with what exists (a name taken, a project still holding repositories). */
  CONFLICT: { status: 409, message: 'conflict with the current state' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  INTERNAL: { status: 500, message: 'internal server error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A failure with a registry error code; `detail` is shown to the client, so it never holds secrets. */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  /** Extra response headers the error needs (e.g. `Range` on a 416). */
  readonly headers: Record<string, string>;
  /**
   * The HTTP status: the code's own, except where the spec pairs a code with another status
   * (a manifest over the size limit is `SIZE_INVALID` with 413 Payload Too Large).
   */
  readonly status: number;

  constructor(code: ErrorCode, message?: string, detail?: unknown, options: { headers?: Record<string, string>; status?: 413 } = {}) {
    super(message ?? ERROR_CODES[code].message);
    this.name = 'RegistryError';
    this.code = code;
    this.detail = detail;
    this.headers = options.headers ?? {};
    this.status = options.status ?? ERROR_CODES[code].status;
  }
}

/** One field that failed validation, as `detail.fields` lists them. */
export interface FieldError {
  path: string;
  message: string;
}

/**
 * A 400 INVALID naming every field in `fields` (in the message too, so one line says it all): the
 * one error for refused settings, whether the API's schema or a service's own checks refused them.
 * The messages must never repeat what was sent.
 */
export function invalid(fields: FieldError[]): RegistryError {
  const summary = fields.map((f) => `${f.path}: ${f.message}`).join('; ');
  return new RegistryError('INVALID', `invalid request: ${summary}`, { fields });
}

// Standard Webhooks signatures (https://www.standardwebhooks.com): the receiver checks that a
// message came from Berth and was not altered or replayed, with the endpoint's secret.
import { createHmac, randomBytes } from 'node:crypto';

/** The secret's prefix, as Standard Webhooks libraries expect it. */
const PREFIX = 'whsec_';

/** A secret's form: `whsec_` and the base64 of 24 to 64 random bytes. */
export const SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;

/** A new random signing secret: `whsec_` and the base64 of 24 random bytes. */
export function generateSecret(): string {
  return PREFIX + randomBytes(24).toString('base64');
}

/** Why `secret` cannot be a signing secret (undefined when it can). Never repeats it. */
export function secretProblem(secret: string): string | undefined {
  if (!SECRET_PATTERN.test(secret)) return 'must be whsec_ followed by the base64 of 24 to 64 bytes (or ask for a generated one)';
  const bytes = Buffer.from(secret.slice(PREFIX.length), 'base64').length;
  if (bytes < 24 || bytes > 64) return 'must be whsec_ followed by the base64 of 24 to 64 bytes';
  return undefined;
}

/** The headers a signed delivery carries. */
export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The Standard Webhooks headers of `body` sent as message `id` at `timestamp` (seconds):
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the secret's
 * decoded bytes. Without a secret, only id and timestamp (receivers may still deduplicate by id).
 */
export function signatureHeaders(secret: string | undefined, id: string, timestamp: number, body: string): Partial<SignatureHeaders> & Pick<SignatureHeaders, 'webhook-id' | 'webhook-timestamp'> {
  const headers = { 'webhook-id': id, 'webhook-timestamp': String(timestamp) };
  if (secret === undefined) return headers;
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { ...headers, 'webhook-signature': `v1,${mac}` };
}

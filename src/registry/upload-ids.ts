import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const RANDOM = 12;
const TIME = 6;
const MAC = 8;

/**
 * Upload session ids that prove their own origin: random bytes, the issue time and an HMAC under a
 * key every replica shares. When a client presents an id the metadata does not know, Berth can
 * tell "issued here, since ended or lost" from "never issued by this registry" (another registry
 * behind the same name, or replicas that do not share storage: PROXIES.md M10).
 */
export class UploadIds {
  constructor(private readonly key: Buffer) {}

  issue(now = Date.now()): string {
    const body = Buffer.alloc(RANDOM + TIME);
    randomBytes(RANDOM).copy(body);
    body.writeUIntBE(now, RANDOM, TIME);
    return Buffer.concat([body, this.mac(body)]).toString('base64url');
  }

  /** When `id` was issued by a registry holding this key; undefined if it was not. */
  issuedAt(id: string): number | undefined {
    if (!/^[A-Za-z0-9_-]{35}$/.test(id)) return undefined;
    const raw = Buffer.from(id, 'base64url');
    if (raw.length !== RANDOM + TIME + MAC) return undefined;
    const body = raw.subarray(0, RANDOM + TIME);
    if (!timingSafeEqual(raw.subarray(RANDOM + TIME), this.mac(body))) return undefined;
    return body.readUIntBE(RANDOM, TIME);
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC);
  }
}

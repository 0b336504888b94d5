import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../domain/errors.ts';

/**
 * Reads a small request body (manifests, token forms) up to `limit` bytes. A larger body, declared or
 * actual, is refused with 413 before it is buffered.
 */
export async function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  const tooLarge = () => new RegistryError('SIZE_INVALID', `body larger than the limit of ${limit} bytes`, { limit }, { status: 413 });
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  // Leave the request alone when stopping early: the error response then closes the connection.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

// The certificate authorities Berth trusts for one outbound peer beside the system's (a registry
// endpoint's or a webhook's `caFile`): read and checked when it is set, read again when used.
import { X509Certificate } from 'node:crypto';
import { open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';

/** The largest CA file read. */
const MAX_CA_BYTES = 1024 * 1024;

/** The PEM text of CA file `file`, or why it cannot serve as one (a message that does not repeat the path). */
export async function readCA(file: string): Promise<{ pem: string } | { message: string }> {
  if (!isAbsolute(file) || file.length > 1024 || file.includes('\u0000')) return { message: 'must be the absolute path of a PEM file on the server' };
  let text: string;
  try {
    const handle = await open(file, 'r');
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) return { message: 'is not a regular file on the server' };
      if (stat.size > MAX_CA_BYTES) return { message: 'is larger than 1 MiB' };
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    return { message: `cannot be read by the server (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return { message: 'is not a PEM file of certificates (no BEGIN CERTIFICATE block)' };
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      return { message: 'holds a certificate that does not parse' };
    }
  }
  return { pem: text };
}

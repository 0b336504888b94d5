import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';
import { blobStoreContract } from './contract.ts';

blobStoreContract('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  const store = new FilesystemBlobStore(dir);
  await store.init();
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

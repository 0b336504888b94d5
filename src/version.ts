import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package.json above this module: src/ when run from source, dist/ or dist/chunks/ in the bundle. */
function packageFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'package.json');
}

/** The folder holding Berth's package.json (and dist/, where the built portal is). */
export const PACKAGE_ROOT = dirname(packageFile());

/** Berth's version, from package.json. */
export const VERSION = (JSON.parse(readFileSync(packageFile(), 'utf8')) as { version: string }).version;

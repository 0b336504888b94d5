import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { RegistryError } from '../../domain/errors.ts';
import type { Context, Route } from '../context.ts';

/**
 * The web portal: the files Vite built into dist/ui/ (scripts/build.mjs, run by `npm install`),
 * served from memory.
 *
 * - `/assets/…` carry a content hash in their names: cached for a year, never revalidated.
 * - The paths of the portal's pages (`/`, `/login`, `/account`, `/projects/…`, `/repositories/…`,
 *   `/admin/…`: ui/src/app/routes.ts) are the single page, `index.html`, never cached, so a new
 *   build is picked up on the next visit. Other files at the top of the build are served as they are.
 * - The build leaves a `.br` and a `.gz` beside each text file; the client's Accept-Encoding picks one.
 * - Pages are sent with a Content-Security-Policy that allows only the portal's own scripts and
 *   styles and forbids framing: the portal has no inline script, so an injected one cannot run.
 *
 * Every other path — the registry (`/v2`), the API (`/api/`), the token service (`/service/`), the
 * operations endpoints, and paths nothing owns — is never answered here: its 404 stays the OCI
 * error envelope.
 */

interface StaticFile {
  type: string;
  plain: Buffer;
  br?: Buffer;
  gz?: Buffer;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** The first segments of the portal's page addresses (besides `/`): those of ui/src/app/routes.ts. */
export const PORTAL_SECTIONS = ['login', 'account', 'projects', 'repositories', 'admin'] as const;

/** The portal's pages, its assets, and files at the top of its build (a name with an extension). */
const PORTAL_PATHS = new RegExp(`^/(?:(?:${PORTAL_SECTIONS.join('|')}|assets)(?:/.*)?|[^/]+\\.[A-Za-z0-9]+)?$`);

/** Headers of the portal's page: its Content-Security-Policy and the usual hardening. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
};

/** Reads a built portal folder into memory: relative path (with `/`) → file. Empty when not built. */
export function loadPortal(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(join(dir, 'index.html'))) return files;
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      if (name.endsWith('.br') || name.endsWith('.gz')) continue;
      const read = (suffix: string) => (existsSync(path + suffix) ? readFileSync(path + suffix) : undefined);
      files.set(
        relative(dir, path).split(sep).join('/'),
        { type: TYPES[extname(name)] ?? 'application/octet-stream', plain: readFileSync(path), br: read('.br'), gz: read('.gz') },
      );
    }
  };
  walk(dir);
  return files;
}

/** The compressed form the client accepts, best first: brotli, then gzip, else the file as it is. */
function encoding(ctx: Context, file: StaticFile): { body: Buffer; encoding?: string } {
  const accepted = String(ctx.req.headers['accept-encoding'] ?? '').toLowerCase();
  const offers = (name: string) => new RegExp(`(^|[\\s,])${name}(?!;\\s*q=0(?:\\.0+)?(?:[\\s,]|$))`).test(accepted);
  if (file.br && offers('br')) return { body: file.br, encoding: 'br' };
  if (file.gz && offers('gzip')) return { body: file.gz, encoding: 'gzip' };
  return { body: file.plain };
}

function send(ctx: Context, file: StaticFile, headers: Record<string, string>): void {
  const { body, encoding: used } = encoding(ctx, file);
  ctx.res.writeHead(200, {
    'Content-Type': file.type,
    'Content-Length': body.length,
    Vary: 'Accept-Encoding',
    ...(used ? { 'Content-Encoding': used } : {}),
    ...headers,
  });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
}

/** The portal's route: last in the table, GET and HEAD of every path nothing else owns. */
export function portalRoutes(dir: string): Route[] {
  const files = loadPortal(dir);
  const index = files.get('index.html');
  return [
    {
      name: 'portal',
      methods: ['GET', 'HEAD'],
      pattern: PORTAL_PATHS,
      handler: async (ctx: Context) => {
        if (!index) throw new RegistryError('NOT_FOUND', 'the web portal is not built: run npm run build', {});
        let path: string;
        try {
          path = decodeURIComponent(ctx.path).slice(1);
        } catch {
          throw new RegistryError('NOT_FOUND', 'no such page', {});
        }
        const file = files.get(path);
        if (path.startsWith('assets/')) {
          if (!file) throw new RegistryError('NOT_FOUND', 'no such file of the portal', { reason: 'assets of an older build are not kept: reload the page' });
          send(ctx, file, { 'Cache-Control': 'public, max-age=31536000, immutable' });
          return;
        }
        if (/^[^/]+\.[A-Za-z0-9]+$/.test(path) && path !== 'index.html') {
          if (!file) throw new RegistryError('NOT_FOUND', 'no such endpoint', { reason: 'no route matches the request path' });
          send(ctx, file, { 'Cache-Control': 'no-cache' });
          return;
        }
        send(ctx, index, { 'Cache-Control': 'no-cache', ...PAGE_HEADERS });
      },
    },
  ];
}

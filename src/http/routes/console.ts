// The web console's static files (dist/web, built by `npm run build:web`). Only these
// routes answer without authentication; the console itself talks to the server through
// the public /v1 API like any other client. Paths are never joined from user input: an
// asset name must be one safe file name, and the resolved file must lie inside dist/web.
import { realpathSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where `npm run build:web` writes the console. */
export const DEFAULT_WEB_DIR = join(import.meta.dirname, '..', '..', '..', 'dist', 'web');

/**
 * The console's Content-Security-Policy: only our own scripts, styles and API; no inline
 * script or style, no framing, no <base>, forms post only to us.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};
// Vite's hashed output names: one segment, no leading dot, a known extension.
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

function consoleHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin');
}

const MISSING = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Modelkeep console not built</title></head>
<body><h1>The Modelkeep console is not built</h1><p>Run <code>npm run build:web</code> (or <code>npm start</code>, which builds it) and reload. The API under /v1 works without it.</p></body></html>
`;

export function consoleRoutes(app: FastifyInstance, deps: { dir: string }): void {
  const root = deps.dir;

  const sendIndex = async (reply: FastifyReply) => {
    consoleHeaders(reply).header('cache-control', 'no-cache');
    let html: Buffer;
    try {
      html = await readFile(join(root, 'index.html'));
    } catch {
      return reply.code(503).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(MISSING);
    }
    return reply.header('content-type', 'text/html; charset=utf-8').send(html);
  };

  // The console's pages are hash routes under `/`; `/device` is the verification URI
  // that `modelkeep login` prints, served by the same page.
  app.get('/', { config: { auth: false } }, async (_request, reply) => sendIndex(reply));
  app.get('/device', { config: { auth: false } }, async (_request, reply) => sendIndex(reply));

  app.get<{ Params: { '*': string } }>('/assets/*', { config: { auth: false } }, async (request, reply) => {
    const name = request.params['*'];
    const type = TYPES[extname(name)];
    const notFound = () =>
      reply.code(404).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').send('not found\n');
    if (!ASSET_NAME.test(name) || type === undefined) return notFound();
    let file: string;
    try {
      const dir = realpathSync(join(root, 'assets'));
      file = realpathSync(join(dir, name));
      // A symlink out of dist/web is refused like any other path outside it.
      if (!file.startsWith(dir + sep)) return notFound();
      if (!(await stat(file)).isFile()) return notFound();
    } catch {
      return notFound();
    }
    // Names carry a content hash: a changed file is a new name, so cache for a year.
    return consoleHeaders(reply)
      .header('content-type', type)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .send(await readFile(file));
  });
}

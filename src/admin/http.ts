// The admin HTTP server: health, Prometheus metrics, reload, "why is this blocked?" and the
// dashboard over HTTP (routes.ts). Off by default; loopback only unless a bearer token is
// configured, and with a token every request but the page itself must carry it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { StartupError } from '../net/bind-error.js';
import type { Endpoint } from '../net/endpoint.js';
import type { AdminBackend } from './backend.js';
import { findRoute, routeList } from './routes.js';

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body, null, 1) + '\n' : String(body);
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
  res.end(text);
}

function authorized(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return true;
  const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

async function serveRequest(req: IncomingMessage, res: ServerResponse, backend: AdminBackend, token: string | null): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const route = findRoute(req.method, url.pathname);
  if (route?.public !== true && !authorized(req, token)) {
    res.setHeader('www-authenticate', 'Bearer');
    send(res, 401, { error: 'missing or wrong bearer token (Authorization: Bearer TOKEN)' });
    return;
  }
  if (route === undefined) {
    send(res, 404, { error: `no ${req.method} ${url.pathname}; try ${routeList()}` });
    return;
  }
  const r = await route.handle(url, backend, req);
  send(res, r.status, r.body, r.type);
}

export function startAdmin(endpoint: Endpoint, token: string | null, backend: AdminBackend): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      serveRequest(req, res, backend, token).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
    });
    server.once('error', (err: NodeJS.ErrnoException) => reject(new StartupError(`cannot listen on ${endpoint.label} (admin HTTP): ${err.code ?? err.message}; choose another --admin`)));
    server.listen(endpoint.port, endpoint.host, () => resolve(server));
  });
}

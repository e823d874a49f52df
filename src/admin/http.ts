// The admin HTTP server: health, Prometheus metrics, reload, "why is this blocked?" and the
// dashboard over HTTP (routes.ts). Off by default; loopback only unless a bearer token is
// configured, and with a token every request but the page itself must carry it.
//
// A web page in the admin's browser must not be able to use this API: the Host header must
// name this server (its address, localhost, or a configured name), so DNS rebinding cannot
// reach it; a state-changing request with an Origin of another site (or "null") is refused.
// Requests are small and quick, or they are cut off: headers within 5 s, the whole request
// within 10 s, bodies up to 64 KB, at most 64 connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { networkInterfaces } from 'node:os';
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

export const ADMIN_LIMITS = { headersTimeoutMs: 5000, requestTimeoutMs: 10_000, maxBodyBytes: 64 * 1024, maxConnections: 64 } as const;

/** The host names (lower-case, without port) a request may address this server by. */
export function allowedHosts(endpoint: Endpoint, names: readonly string[]): Set<string> {
  const hosts = new Set(['localhost', '127.0.0.1', '[::1]', ...names.map((n) => n.toLowerCase())]);
  const bracket = (h: string): string => (h.includes(':') ? `[${h}]` : h);
  if (endpoint.host === '0.0.0.0' || endpoint.host === '::') {
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) hosts.add(bracket(i.address.replace(/%.*$/, '')));
  } else hosts.add(bracket(endpoint.host));
  return hosts;
}

/** The host part of a Host header or an Origin's authority, lower-cased; null when it names a port other than ours. */
function hostOf(authority: string, port: number): string | null {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority.toLowerCase());
  if (m === null) return null;
  if (m[2] !== undefined && Number(m[2]) !== port) return null;
  return m[1]!;
}

/** Why a request must be refused before it reaches a route (403), or null. */
function foreignRequest(req: IncomingMessage, hosts: Set<string>, port: number): string | null {
  const host = hostOf(req.headers.host ?? '', port);
  if (host === null || !hosts.has(host)) {
    return `Host "${req.headers.host ?? ''}" is not this server; use http://127.0.0.1:${port}/ or add the name with --admin-hostname`;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && req.method !== 'GET' && req.method !== 'HEAD') {
    const m = /^https?:\/\/(.+)$/.exec(origin);
    const originHost = m === null ? null : hostOf(m[1]!, port);
    if (originHost === null || !hosts.has(originHost)) return `cross-site request from Origin "${origin}" refused`;
  }
  return null;
}

/** Reads the body up to the limit; null when it is larger. */
function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    if (Number(req.headers['content-length'] ?? 0) > ADMIN_LIMITS.maxBodyBytes) {
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > ADMIN_LIMITS.maxBodyBytes) {
        req.pause();
        resolve(null);
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(null));
  });
}

/**
 * Parameters may come as a JSON object body (or a form body) as well as in the query string:
 * the body's fields are added to url.searchParams, so every handler reads one place.
 * Returns an error for a body that is neither.
 */
function mergeBodyParams(url: URL, req: IncomingMessage, body: Buffer): string | null {
  const text = body.toString('utf8').trim();
  if (text === '') return null;
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(text)) url.searchParams.set(k, v);
    return null;
  }
  // Any other body (text/plain, say) holds no parameters.
  if (!type.includes('json') && !text.startsWith('{')) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'the body is not JSON; send {"name": "..."} with content-type application/json, or use query parameters';
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'the JSON body must be an object, e.g. {"name": "icq.com"}';
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') url.searchParams.set(k, String(v));
  }
  return null;
}

/** One line per change made through the API: who (the token, or loopback without one), from where, what. */
export type AuditLog = (entry: { who: string; from: string; action: string; params: Record<string, string>; status: number; result: unknown }) => void;

const stderrAudit: AuditLog = (entry) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), msg: 'admin change', ...entry }) + '\n');

async function serveRequest(req: IncomingMessage, res: ServerResponse, backend: AdminBackend, token: string | null,
  hosts: Set<string>, port: number, audit: AuditLog): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const foreign = foreignRequest(req, hosts, port);
  if (foreign !== null) {
    send(res, 403, { error: foreign });
    return;
  }
  const body = await readBody(req);
  if (body === null) {
    res.setHeader('connection', 'close');
    send(res, 413, { error: `request body larger than ${ADMIN_LIMITS.maxBodyBytes} bytes` });
    return;
  }
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
  const bad = mergeBodyParams(url, req, body);
  if (bad !== null) {
    send(res, 400, { error: bad });
    return;
  }
  const r = await route.handle(url, backend, req);
  if (route.method === 'POST') {
    audit({ who: token === null ? 'loopback (no token set)' : 'token', from: req.socket.remoteAddress ?? '?', action: `${route.method} ${route.path}`,
      params: Object.fromEntries(url.searchParams), status: r.status, result: r.body });
  }
  send(res, r.status, r.body, r.type);
}

/** `audit` gets every POST (a change, or an attempt at one) once it is answered; the server's log should be given. */
export function startAdmin(endpoint: Endpoint, token: string | null, backend: AdminBackend, hostnames: readonly string[] = [],
  audit: AuditLog = stderrAudit): Promise<Server> {
  const hosts = allowedHosts(endpoint, hostnames);
  return new Promise((resolve, reject) => {
    const server = createServer({ headersTimeout: ADMIN_LIMITS.headersTimeoutMs, requestTimeout: ADMIN_LIMITS.requestTimeoutMs, connectionsCheckingInterval: 1000 }, (req, res) => {
      serveRequest(req, res, backend, token, hosts, endpoint.port, audit).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
    });
    server.maxConnections = ADMIN_LIMITS.maxConnections;
    server.once('error', (err: NodeJS.ErrnoException) => reject(new StartupError(`cannot listen on ${endpoint.label} (admin HTTP): ${err.code ?? err.message}; choose another --admin`)));
    server.listen(endpoint.port, endpoint.host, () => resolve(server));
  });
}

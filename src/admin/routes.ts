// The admin API's routes: one line each. Handlers get the parsed URL and the backend, and
// return a status, a body and its type. Adding an endpoint = adding a row here.
import type { IncomingMessage } from 'node:http';
import { DASHBOARD_HTML } from './dashboard.js';
import type { AdminBackend } from './backend.js';
import { renderMetrics } from './prometheus.js';
import { renderStats } from './stats-view.js';
import { parseQtype } from '../wire/constants.js';

export interface RouteResult {
  status: number;
  body: unknown;
  /** Default application/json. */
  type?: string;
}

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Public routes hold no data (the dashboard page reads /api/stats with the token). */
  public?: boolean;
  handle(url: URL, backend: AdminBackend, req: IncomingMessage): Promise<RouteResult>;
}

export const ROUTES: Route[] = [
  { method: 'GET', path: '/', public: true, handle: () => Promise.resolve({ status: 200, body: DASHBOARD_HTML, type: 'text/html' }) },
  {
    method: 'GET', path: '/healthz', handle: async (_u, b) => {
      const h = await b.health();
      return { status: h.status, body: h.body };
    },
  },
  { method: 'GET', path: '/metrics', handle: async (_u, b) => ({ status: 200, body: renderMetrics((await b.snapshot()).families), type: 'text/plain; version=0.0.4' }) },
  { method: 'POST', path: '/reload', handle: async (_u, b) => ({ status: 200, body: await b.reload() }) },
  {
    method: 'GET', path: '/api/check', handle: async (url, b) => {
      const name = url.searchParams.get('name');
      const qtype = parseQtype(url.searchParams.get('type') ?? 'A');
      if (name === null || qtype === undefined) return { status: 400, body: { error: 'give ?name=NAME, and optionally &type=A|AAAA|...&client=IP' } };
      const result = await b.check(name, qtype, url.searchParams.get('client'));
      return { status: 'error' in result ? 400 : 200, body: result };
    },
  },
  { method: 'GET', path: '/api/stats', handle: async (_u, b) => ({ status: 200, body: renderStats(await b.snapshot()) }) },
  { method: 'GET', path: '/api/report', handle: (url, b) => b.report(url.searchParams) },
];

export function findRoute(method: string | undefined, path: string): Route | undefined {
  return ROUTES.find((r) => r.method === method && r.path === path);
}

/** For the 404 message. */
export function routeList(): string {
  return ROUTES.map((r) => `${r.method} ${r.path}`).join(', ');
}

// The admin API's routes: one line each. Handlers get the parsed URL and the backend, and
// return a status, a body and its type. Adding an endpoint = adding a row here.
import type { IncomingMessage } from 'node:http';
import { DASHBOARD_HTML } from './dashboard.js';
import type { AdminBackend } from './backend.js';
import { renderMetrics } from './prometheus.js';
import { renderStats } from './stats-view.js';
import { parseQtype } from '../wire/constants.js';
import { parseDuration } from '../stages/policy/duration.js';
import { parseAt } from '../stages/policy/schedules.js';
import { bundleAction, bundleList, listAction } from './actions.js';

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
  {
    // 400 when the config file has a bad line: the rules were reloaded, the running policy kept.
    method: 'POST', path: '/reload', handle: async (_u, b) => {
      const body = await b.reload();
      return { status: (body.config as { reloaded?: boolean } | undefined)?.reloaded === false ? 400 : 200, body };
    },
  },
  {
    method: 'GET', path: '/api/check', handle: async (url, b) => {
      const name = url.searchParams.get('name');
      const qtype = parseQtype(url.searchParams.get('type') ?? 'A');
      if (name === null || qtype === undefined) return { status: 400, body: { error: 'give ?name=NAME, and optionally &type=A|AAAA|...&client=IP&at=mon+12:30' } };
      const atText = url.searchParams.get('at');
      let at: number | null = null;
      try {
        if (atText !== null) at = parseAt(atText, 'at');
      } catch (err) {
        return { status: 400, body: { error: (err as Error).message } };
      }
      const result = await b.check(name, qtype, url.searchParams.get('client'), at);
      return { status: 'error' in result ? 400 : 200, body: result };
    },
  },
  {
    method: 'POST', path: '/api/pause', handle: async (url, b) => {
      const forText = url.searchParams.get('for');
      let forMs: number | null = null;
      try {
        if (forText !== null) forMs = parseDuration(forText, 'for');
      } catch (err) {
        return { status: 400, body: { error: (err as Error).message } };
      }
      try {
        return { status: 200, body: await b.pause(url.searchParams.get('group'), forMs) };
      } catch (err) {
        return { status: 400, body: { error: (err as Error).message } };
      }
    },
  },
  { method: 'GET', path: '/api/pause', handle: async (_u, b) => ({ status: 200, body: await b.pauses() }) },
  { method: 'POST', path: '/api/resume', handle: async (url, b) => ({ status: 200, body: await b.resume(url.searchParams.get('group')) }) },
  { method: 'POST', path: '/api/lists/update', handle: async (_u, b) => ({ status: 200, body: await b.updateLists() }) },
  { method: 'GET', path: '/api/stats', handle: async (_u, b) => ({ status: 200, body: renderStats(await b.snapshot()) }) },
  { method: 'GET', path: '/api/report', handle: (url, b) => b.report(url.searchParams) },
  { method: 'GET', path: '/api/attempts', handle: (url, b) => b.attempts(url.searchParams) },
  { method: 'POST', path: '/api/block', handle: (url, b) => listAction('block', url, b) },
  { method: 'POST', path: '/api/allow', handle: (url, b) => listAction('allow', url, b) },
  { method: 'GET', path: '/api/bundles', handle: (_u, b) => bundleList(b) },
  {
    method: 'GET', path: '/api/fleet', handle: async (_u, b) => {
      if (!b.fleetView) return { status: 404, body: { error: 'this server is not part of a fleet (no --redis)' } };
      try {
        return { status: 200, body: await b.fleetView() };
      } catch (err) {
        return { status: 503, body: { error: `cannot read the fleet from Redis: ${(err as Error).message}` } };
      }
    },
  },
  { method: 'POST', path: '/api/bundles/enable', handle: (url, b) => bundleAction('enable', url, b) },
  { method: 'POST', path: '/api/bundles/disable', handle: (url, b) => bundleAction('disable', url, b) },
];

export function findRoute(method: string | undefined, path: string): Route | undefined {
  return ROUTES.find((r) => r.method === method && r.path === path);
}

/** For the 404 message. */
export function routeList(): string {
  return ROUTES.map((r) => `${r.method} ${r.path}`).join(', ');
}

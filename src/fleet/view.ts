// What `sinkhole stats --fleet` shows: every node's heartbeat (a node silent for three beats
// is down) and the hourly counts added up by every node, read straight from Redis.
import type { Heartbeat } from './figures.js';
import { hourOf, KEYS } from './keys.js';
import type { RedisLink } from './link.js';

export interface NodeView extends Heartbeat {
  up: boolean;
  secondsSinceHeartbeat: number;
}

export interface FleetView {
  nodes: NodeView[];
  /** The hours read, oldest first. */
  hours: string[];
  /** Summed over those hours. */
  sites: Record<string, { queries: number; blocked: number }>;
  perNode: Record<string, { queries: number; blocked: number }>;
  clients: { site: string; client: string; queries: number; blocked: number }[];
  bundles: { site: string; bundle: string; blocked: number }[];
  policyVersion: number;
}

/** Reads the fleet: heartbeats and the last `hours` hours of counts (the current one included). */
export async function readFleetView(link: RedisLink, hours = 24, now = Date.now()): Promise<FleetView> {
  const raw = await link.send<Record<string, string> | string[]>(['HGETALL', KEYS.nodes]);
  const entries = Array.isArray(raw) ? pairs(raw) : Object.entries(raw);
  const nodes: NodeView[] = [];
  for (const [, json] of entries) {
    try {
      const b = JSON.parse(json) as Heartbeat;
      const age = now - b.at;
      nodes.push({ ...b, up: age <= 3 * (b.heartbeatMs || 3000), secondsSinceHeartbeat: Math.round(age / 1000) });
    } catch {
      // Not a heartbeat: skip (only data is read from Redis).
    }
  }
  nodes.sort((a, b) => (a.site === b.site ? a.node.localeCompare(b.node) : a.site.localeCompare(b.site)));
  const hourList: string[] = [];
  for (let i = hours - 1; i >= 0; i--) hourList.push(hourOf(now - i * 3_600_000));
  const sites: FleetView['sites'] = {};
  const perNode: FleetView['perNode'] = {};
  const clients = new Map<string, { site: string; client: string; queries: number; blocked: number }>();
  const bundles = new Map<string, { site: string; bundle: string; blocked: number }>();
  const hashes = await Promise.all(hourList.map((h) => link.send<Record<string, string> | string[]>(['HGETALL', KEYS.hour(h)])));
  for (const hash of hashes) {
    for (const [field, value] of Array.isArray(hash) ? pairs(hash) : Object.entries(hash)) {
      const n = Number(value);
      const parts = field.split('|');
      const what = parts[parts.length - 1] as 'queries' | 'blocked';
      if (what !== 'queries' && what !== 'blocked') continue;
      if (parts[0] === 'site' && parts.length === 3) (sites[parts[1]!] ??= { queries: 0, blocked: 0 })[what] += n;
      else if (parts[0] === 'node' && parts.length === 3) (perNode[parts[1]!] ??= { queries: 0, blocked: 0 })[what] += n;
      else if (parts[0] === 'client' && parts.length === 4) {
        const key = `${parts[1]}|${parts[2]}`;
        let c = clients.get(key);
        if (c === undefined) clients.set(key, (c = { site: parts[1]!, client: parts[2]!, queries: 0, blocked: 0 }));
        c[what] += n;
      } else if (parts[0] === 'bundle' && parts.length === 4 && what === 'blocked') {
        const key = `${parts[1]}|${parts[2]}`;
        let b = bundles.get(key);
        if (b === undefined) bundles.set(key, (b = { site: parts[1]!, bundle: parts[2]!, blocked: 0 }));
        b.blocked += n;
      }
    }
  }
  const current = await link.send<string | null>(['GET', KEYS.policyCurrent]);
  return {
    nodes, hours: hourList, sites, perNode,
    clients: [...clients.values()].sort((a, b) => b.queries - a.queries),
    bundles: [...bundles.values()].sort((a, b) => b.blocked - a.blocked),
    policyVersion: current === null ? 0 : Number.parseInt(current, 10) || 0,
  };
}

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** The view as lines for the terminal. */
export function renderFleetView(v: FleetView): string {
  const lines: string[] = [];
  const up = v.nodes.filter((n) => n.up).length;
  lines.push(`fleet: ${v.nodes.length} nodes (${up} up, ${v.nodes.length - up} down); policy version ${v.policyVersion}; counts over the last ${v.hours.length} h`);
  for (const n of v.nodes) {
    const c = v.perNode[n.node] ?? { queries: 0, blocked: 0 };
    lines.push(`  ${n.up ? 'up  ' : 'DOWN'}  ${n.site}/${n.node}  ${n.role}  v${n.version}  up ${Math.round((n.at - n.startedAt) / 60000)} min  ` +
      `policy ${n.policyVersion} (${n.rules} rules)  ${c.queries} queries, ${c.blocked} blocked  upstream ${n.upstreamHealthy ? 'ok' : 'FAILING'}` +
      (n.up ? '' : `  (no heartbeat for ${n.secondsSinceHeartbeat} s)`));
  }
  for (const [site, s] of Object.entries(v.sites).sort()) lines.push(`site ${site}: ${s.queries} queries, ${s.blocked} blocked`);
  lines.push('top clients:');
  for (const c of v.clients.slice(0, 10)) lines.push(`  ${String(c.queries).padStart(8)}  ${String(c.blocked).padStart(6)} blocked  ${c.site}/${c.client}`);
  lines.push('blocked by bundle:');
  for (const b of v.bundles.slice(0, 10)) lines.push(`  ${String(b.blocked).padStart(8)}  ${b.site}/${b.bundle}`);
  return lines.join('\n');
}

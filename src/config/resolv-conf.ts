// Upstreams from /etc/resolv.conf when none are configured.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { endpointLabel, type Endpoint } from '../net/endpoint.js';

/** Nameservers of a resolv.conf, less any that would be this server itself (a forwarding loop). */
export function upstreamsFromResolvConf(path: string, listen: Endpoint[]): Endpoint[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const local = new Set<string>(['0.0.0.0', '::']);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) local.add(i.address);
  const isLocal = (host: string): boolean => local.has(host) || host.startsWith('127.') || host === '::1';
  const found: Endpoint[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const host = m[1]!.replace(/%.*$/, '');
    const family = isIP(host);
    if (family === 0) continue;
    const loops = listen.some((l) => l.port === 53 &&
      (l.host === host || ((l.host === '0.0.0.0' || l.host === '::') && isLocal(host))));
    if (!loops) found.push({ host, port: 53, family: family as 4 | 6, label: endpointLabel(host, 53) });
  }
  return found;
}

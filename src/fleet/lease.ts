// The primary's lease: one key holding the primary's node name, with an expiry that the
// primary renews every third of it. A second primary finds the key held by another name and
// is refused; when the primary is gone the key expires and another node can start as primary.
import { KEYS } from './keys.js';
import type { RedisLink } from './link.js';

/** Renews the lease only if this node still holds it (atomic: check and extend in one step). */
const RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

export class LeaseRefused extends Error {}

export type LeaseResult = { held: true } | { held: false; holder: string; expiresInMs: number };

/** Takes the lease, or says who holds it. A node restarted under the same name takes its own lease back. */
export async function acquireLease(link: RedisLink, node: string, ttlMs: number): Promise<LeaseResult> {
  const set = await link.send<string | null>(['SET', KEYS.lease, node, 'NX', 'PX', String(ttlMs)]);
  if (set === 'OK') return { held: true };
  const holder = await link.send<string | null>(['GET', KEYS.lease]);
  if (holder === node) {
    await link.send(['PEXPIRE', KEYS.lease, String(ttlMs)]);
    return { held: true };
  }
  if (holder === null) return acquireLease(link, node, ttlMs);
  const pttl = await link.send<number>(['PTTL', KEYS.lease]);
  return { held: false, holder, expiresInMs: Math.max(0, pttl) };
}

/** Extends the lease; false when another node holds it now (this one was away too long). */
export async function renewLease(link: RedisLink, node: string, ttlMs: number): Promise<boolean> {
  return (await link.send<number>(['EVAL', RENEW, '1', KEYS.lease, node, String(ttlMs)])) === 1;
}

export async function releaseLease(link: RedisLink, node: string): Promise<void> {
  await link.send(['EVAL', RELEASE, '1', KEYS.lease, node]);
}

export function refusedMessage(node: string, holder: string, expiresInMs: number): string {
  return `another primary, "${holder}", holds the fleet lease (expires in ${Math.ceil(expiresInMs / 1000)} s unless renewed); ` +
    `start "${node}" with --fleet-role replica, or stop "${holder}" and start this one again once its lease has expired`;
}

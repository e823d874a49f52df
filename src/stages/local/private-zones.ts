// Locally served zones (RFC 6303, and home.arpa from RFC 8375): reverse lookups of private
// and special addresses mean nothing outside this network, so they are answered here with
// NXDOMAIN instead of leaking to the internet's servers (which cannot answer them anyway).
import { mustKey } from '../../wire/names.js';
import { ZoneMap } from '../../wire/zone-map.js';

function v4(...octets: number[]): string {
  return [...octets.reverse(), 'in-addr', 'arpa'].join('.');
}

function v6(prefixNibbles: string): string {
  return [...prefixNibbles.split('').reverse(), 'ip6', 'arpa'].join('.');
}

/** The zones' names, as RFC 6303 section 4 lists them (plus 100.64/10, RFC 7793, and home.arpa). */
export const PRIVATE_ZONES: readonly string[] = [
  v4(10), ...Array.from({ length: 16 }, (_, i) => v4(172, 16 + i)), v4(192, 168), // RFC 1918
  ...Array.from({ length: 64 }, (_, i) => v4(100, 64 + i)), // shared address space, RFC 6598 / RFC 7793
  v4(0), v4(127), v4(169, 254), v4(192, 0, 2), v4(198, 51, 100), v4(203, 0, 113), v4(255, 255, 255, 255),
  v6('0'.repeat(32)), v6('0'.repeat(31) + '1'), // :: and ::1
  v6('fd'), v6('fc'), v6('fe8'), v6('fe9'), v6('fea'), v6('feb'), // ULA, link-local
  v6('20010db8'), // documentation
  'home.arpa',
];

export function privateZoneMap(): ZoneMap<string> {
  const map = new ZoneMap<string>();
  for (const zone of PRIVATE_ZONES) map.set(mustKey(zone), zone);
  return map;
}

// Bind failures, turned into one line an admin can act on.
import type { Endpoint } from './endpoint.js';

export class StartupError extends Error {}

export function bindErrorMessage(err: NodeJS.ErrnoException, endpoint: Endpoint, proto: 'UDP' | 'TCP' | 'DoT' | 'DoH', flag = '--listen'): string {
  const where = `cannot listen on ${endpoint.label} (${proto})`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `${where}: the address is already in use by another program` +
        (endpoint.port === 53 ? ' (often systemd-resolved\'s stub listener or dnsmasq: see "ss -lunp \'sport = :53\'")' : '') +
        `; stop it or choose another ${flag}`;
    case 'EACCES':
      return `${where}: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE ` +
        '(the systemd unit grants it), or choose a port of 1024 or above';
    case 'EADDRNOTAVAIL':
      return `${where}: no interface on this machine has that address; choose one of this machine's addresses`;
    case 'EAFNOSUPPORT':
      return `${where}: ${endpoint.family === 6 ? 'IPv6' : 'IPv4'} is not available on this machine; leave that ${flag} out`;
    default:
      return `${where}: ${err.code ?? ''} ${err.message}`.trim();
  }
}

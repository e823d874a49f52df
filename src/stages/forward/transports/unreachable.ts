// What the kernel says when an upstream cannot be reached, by errno: one wording for UDP
// (a connected socket's ICMP and routing errors) and for DoT/DoH connections, so that the
// log and the EDE tell "unreachable" apart from "did not answer in time".

const WHY: Record<string, string> = {
  ECONNREFUSED: 'ICMP port unreachable, nothing listens on that port',
  ENETUNREACH: 'no route to its network',
  EHOSTUNREACH: 'no route to the host, or ICMP host unreachable',
  EHOSTDOWN: 'the host is down',
  ENETDOWN: 'the network interface is down',
  EADDRNOTAVAIL: 'no local address to send from',
  EACCES: 'a firewall rule or a prohibit route forbids it',
  EPERM: 'a firewall rule or a prohibit route forbids it',
  // Linux answers a "blackhole" route with EINVAL.
  EINVAL: 'a blackhole route, or an address this host cannot send to',
};

/** `CODE: why` for an errno that means "cannot be reached", else null. */
export function unreachableWhy(code: string | undefined): string | null {
  if (code === undefined) return null;
  const why = WHY[code];
  return why === undefined ? null : `${code}: ${why}`;
}

/** `LABEL is unreachable (CODE: why)` for a UDP upstream, or null when `code` means something else. */
export function unreachableReason(label: string, code: string | undefined): string | null {
  const why = unreachableWhy(code);
  return why === null ? null : `${label} is unreachable (${why})`;
}

// DNS numbers used across the server (RFC 1035, 6891, 8914).

export const HEADER_LENGTH = 12;

// Header flag bits, as they sit in the 16-bit flags word (bytes 2-3).
export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_CD = 0x0010;
export const OPCODE_MASK = 0x7800;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  DNSKEY: 48,
  SVCB: 64,
  HTTPS: 65,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const CLASS_IN = 1;

// EDNS: the DO bit in the OPT record's TTL field (bytes 2-3 of the TTL).
export const EDNS_DO = 0x8000;
// Payload size we advertise and ask upstreams for: the DNS Flag Day 2020 value, which
// avoids IP fragmentation on ordinary paths.
export const EDNS_UDP_SIZE = 1232;
export const EDNS_OPTION_EDE = 15;

// Largest DNS message over UDP without EDNS (RFC 1035 4.2.1).
export const UDP_PLAIN_LIMIT = 512;

const TYPE_NAMES: Record<number, string> = {};
for (const [name, value] of Object.entries(QTYPE)) TYPE_NAMES[value] = name;

const RCODE_NAMES: Record<number, string> = {};
for (const [name, value] of Object.entries(RCODE)) RCODE_NAMES[value] = name;

/** `A`, `AAAA`, ... or `TYPE123` (RFC 3597 style) for types without a name here. */
export function qtypeName(qtype: number): string {
  return TYPE_NAMES[qtype] ?? `TYPE${qtype}`;
}

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/** Parses `A`, `aaaa`, `TYPE65` or `65`; returns undefined when it is none of these. */
export function parseQtype(text: string): number | undefined {
  const upper = text.toUpperCase();
  if (upper in QTYPE) return QTYPE[upper as keyof typeof QTYPE];
  const m = /^(?:TYPE)?(\d{1,5})$/.exec(upper);
  if (m && Number(m[1]) <= 65535) return Number(m[1]);
  return undefined;
}

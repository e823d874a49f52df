// Encoding a query from a name and a type, with dns2: for the few queries the program sends
// of its own accord (the admin health probe, `sinkhole wait-ready`, the benchmark's
// probes). Never on the per-query path: dns2 costs microseconds per message, and the
// server relays and answers from raw bytes (query.ts, answer.ts).
import dns2 from 'dns2';
import { CLASS_IN, parseQtype } from './constants.js';

export interface BuildQueryOptions {
  /** Message ID; random when not given. */
  id?: number;
  /** Recursion desired (default true: a stub resolver's query). */
  rd?: boolean;
}

/**
 * A standard query (opcode QUERY, one question, class IN, no EDNS) for `name` and `qtype`
 * (`A`, `aaaa`, `TYPE65`, or the number). The root is `''` or `'.'`; the name's letter case
 * is kept. Throws on an unknown type name, a label over 63 octets or a name over 255.
 */
export function buildQuery(name: string, qtype: string | number, options: BuildQueryOptions = {}): Buffer {
  const type = typeof qtype === 'number' ? qtype : parseQtype(qtype);
  // Type 0 is reserved (and dns2 would turn it into ANY).
  if (type === undefined || !Number.isInteger(type) || type < 1 || type > 0xffff) {
    throw new Error(`buildQuery: unknown query type "${qtype}" (use A, AAAA, TYPE65 or a number from 1 to 65535)`);
  }
  const header = new dns2.Packet.Header({ id: options.id ?? Math.floor(Math.random() * 0x10000), rd: options.rd === false ? 0 : 1 });
  const packet = new dns2.Packet(header);
  packet.questions.push(new dns2.Packet.Question(name, type, CLASS_IN));
  return packet.toBuffer();
}

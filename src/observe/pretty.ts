// Log lines for a person at a terminal: `12:04:31.120 INFO  blocked  client=192.168.1.23
// qname=chat.example ...` instead of pino's JSON. Used only when stdout is a terminal (see
// createLogger): journald, pipes and files keep getting JSON, one object per line.
//
// Why not pino-pretty: well kept, but pino-pretty 13 depends on 13 packages (a command-line
// argument parser, a config-file loader, a date formatter, a second sonic-boom) for what these
// 70 lines do, and it is meant to run as a transport in a worker thread.

export interface LineSink {
  write(chunk: string): void;
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '\x1b[90m' },
  20: { name: 'DEBUG', color: '\x1b[90m' },
  30: { name: 'INFO', color: '\x1b[32m' },
  40: { name: 'WARN', color: '\x1b[33m' },
  50: { name: 'ERROR', color: '\x1b[31m' },
  60: { name: 'FATAL', color: '\x1b[35m' },
};
const RESET = '\x1b[0m';
const BOLD = '\x1b[1m';
const DIM = '\x1b[2m';

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  // Lists of plain values (listen addresses, networks) read best comma-separated.
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' || (typeof x === 'string' && /^[^\s",=]+$/.test(x)))) return v.join(',');
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON line -> one readable line (plus an indented stack for errors). */
export function prettyLine(json: string, color: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const { level, time, msg, err, ...fields } = entry;
  const when = typeof time === 'string' || typeof time === 'number' ? new Date(time) : new Date();
  const clock = `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}.${pad(when.getMilliseconds(), 3)}`;
  const lvl = LEVELS[level as number] ?? { name: String(level), color: '' };
  const paint = (code: string, text: string) => (color && code !== '' ? `${code}${text}${RESET}` : text);
  let line = `${paint(DIM, clock)} ${paint(lvl.color, lvl.name.padEnd(5))} ${paint(BOLD, typeof msg === 'string' ? msg : '')}`;
  let stack = '';
  if (err !== undefined && err !== null && typeof err === 'object') {
    const e = err as { message?: unknown; stack?: unknown };
    fields.err = e.message ?? err;
    if (typeof e.stack === 'string') stack = `\n${e.stack.split('\n').slice(1).map((l) => `    ${l.trim()}`).join('\n')}`;
  } else if (err !== undefined) {
    fields.err = err;
  }
  for (const [key, v] of Object.entries(fields)) line += ` ${paint(DIM, `${key}=`)}${value(v)}`;
  return `${line}${stack}\n`;
}

/** A pino destination that writes readable lines to `sink`. */
export function prettyStream(sink: LineSink, color: boolean): LineSink {
  return {
    write(chunk: string): void {
      // pino writes one JSON line per call; split anyway, in case a caller batches.
      let out = '';
      for (const json of chunk.split('\n')) if (json.length > 0) out += prettyLine(json, color);
      sink.write(out);
    },
  };
}

// Durations as people write them in config lines and commands: `30s`, `15m`, `24h`, `7d`,
// and sums such as `1h30m`.
import { ConfigError } from '../../config/errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `15m` -> 900000. Throws ConfigError naming `where` when the text is not a duration. */
export function parseDuration(value: string, where: string): number {
  const text = value.trim().toLowerCase();
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const m = /^(\d+)(ms|s|m|h|d)/.exec(rest);
    if (m === null) break;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  if (text.length === 0 || rest.length > 0 || total <= 0) {
    throw new ConfigError(`${where}: "${value}" is not a duration; write e.g. 30s, 15m, 24h, 7d or 1h30m`);
  }
  return total;
}

/** 900000 -> `15m`, for messages. */
export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

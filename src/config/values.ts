// The kinds of value an option takes. Each says what is wrong in words a person can act on;
// the caller adds where (--flag or file:line).
import { isIP } from 'node:net';
import { parseCidr, type Cidr } from '../stages/policy/cidr.js';
import { parseEndpoint, type Endpoint } from '../net/endpoint.js';
import { parseUpstream, type UpstreamSpec } from '../stages/forward/upstream-url.js';
import { Invalid, type ValueType } from './option.js';

export function wholeNumber(min: number, max: number): ValueType<number> {
  return {
    range: `${min} to ${max}`,
    parse: (t) => (/^\d+$/.test(t) && Number(t) >= min && Number(t) <= max ? Number(t) : new Invalid(`"${t}" must be a whole number from ${min} to ${max}`)),
  };
}

/** A duration in seconds above 0; fractions allowed (0.5). */
export const positiveSeconds: ValueType<number> = {
  range: 'above 0',
  parse: (t) => (/^\d+(\.\d+)?$/.test(t) && Number(t) > 0 ? Number(t) : new Invalid(`"${t}" must be a number of seconds above 0 (e.g. 60 or 0.5)`)),
};

export function ipAddress(family: 4 | 6 | 'any'): ValueType<string> {
  const name = family === 'any' ? 'an IP address' : `an IPv${family} address`;
  return { parse: (t) => ((family === 'any' ? isIP(t) !== 0 : isIP(t) === family) ? t : new Invalid(`"${t}" is not ${name}`)) };
}

/** ADDR:PORT, or HOST[:PORT] when there is a default port. */
export function endpoint(defaultPort: number | undefined): ValueType<Endpoint> {
  return {
    parse: (t) => {
      const e = parseEndpoint(t, defaultPort);
      if ('error' in e) return new Invalid(e.error);
      // Port 0 means "any free port" to the kernel: nothing anyone could send to or reach.
      if (e.port === 0) return new Invalid(`"${t}": port 0 is no port a server can be reached on; give the real one (e.g. ${e.family === 6 ? `[${e.host}]` : e.host}:53)`);
      return e;
    },
  };
}

export const cidr: ValueType<Cidr> = {
  parse: (t) => {
    const c = parseCidr(t);
    return 'error' in c ? new Invalid(c.error) : c;
  },
};

/** A CIDR, or the word `any`. */
export const cidrOrAny: ValueType<Cidr | 'any'> = { parse: (t) => (t === 'any' ? 'any' : cidr.parse(t)) };

/** One word of a fixed set; `noun` names it in the message ("log level"). */
export function oneOf<const W extends string>(words: readonly W[], noun: string): ValueType<W> {
  return {
    range: words.join(', '),
    parse: (t) => ((words as readonly string[]).includes(t) ? (t as W) : new Invalid(`${noun} "${t}" must be one of ${words.join(', ')}`)),
  };
}

/** Any non-empty text (a path, a token). */
export const text: ValueType<string> = { parse: (t) => (t.length > 0 ? t : new Invalid('an empty value; give one or leave the option out')) };

/** `off` (null) or a value of `type`. */
export function offOr<T>(type: ValueType<T>): ValueType<T | null> {
  return { range: type.range ? `off, or ${type.range}` : undefined, parse: (t) => (t === 'off' ? null : type.parse(t)) };
}

/** Turns a parse function that returns null for bad text into a ValueType. */
export function checked<T>(parse: (t: string) => T | null | undefined, reason: (t: string) => string, range?: string): ValueType<T> {
  return {
    range,
    parse: (t) => {
      const v = parse(t);
      return v === null || v === undefined ? new Invalid(reason(t)) : v;
    },
  };
}

/** An upstream: IP[:PORT] (plain DNS), tls://IP[:853][#NAME] or https://HOST[:443]/PATH[#NAME]. */
export const upstreamUrl: ValueType<UpstreamSpec> = {
  parse: (t) => {
    const u = parseUpstream(t);
    return 'error' in u ? new Invalid(u.error) : u;
  },
};

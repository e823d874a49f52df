// One option, declared once: its name (the flag `--name` and the config-file key `name`),
// its argument, its default (as a person would type it, so it is validated and documented
// like any given value), what makes a value valid, its help, whether it repeats, and which
// commands take it. The flag parser, the config-file parser, `--help`, the manual pages,
// the README table and the typed Config are all made from these declarations.
import type { Config } from './config.js';
import type { CommandName } from './command.js';
import { ConfigError } from './errors.js';

/** A value as given, and where: `--listen`, `/etc/sinkhole/sinkhole.conf:7`, `default listen`. */
export interface Given {
  value: string;
  where: string;
}

/** What a ValueType's parse returns for a bad value: the reason, without the where. */
export class Invalid {
  constructor(readonly reason: string) {}
}

/** How to read one value; `range` describes the valid values for the documentation. */
export interface ValueType<T> {
  parse(text: string): T | Invalid;
  range?: string;
}

/** The Config fields whose type is exactly V: a declaration can only fill a field of its own type. */
export type FieldOf<V> = {
  [K in keyof Config]-?: [Config[K]] extends [V] ? ([V] extends [Config[K]] ? K : never) : never;
}[keyof Config];

export interface Option<T = unknown> {
  readonly name: string;
  /** The argument's placeholder (`ADDR:PORT`); null for a switch such as --json. */
  readonly arg: string | null;
  /** One line for --help. */
  readonly help: string;
  /** More, for the manual page and the README (plain sentences). */
  readonly details: string | null;
  /** The default as typed; [] when there is none (or it is computed, see defaultText). */
  readonly defaults: readonly string[];
  /** The default as documented. */
  readonly defaultText: string;
  readonly range: string | null;
  readonly repeatable: boolean;
  readonly commands: readonly CommandName[];
  /** Whether it may be a line of the config file (command-line-only options are not). */
  readonly inFile: boolean;
  /** The Config field it fills, if any (type-checked at the declaration). */
  readonly field: keyof Config | null;
  /** The given values (already the winning source, or the defaults) -> the typed value. Throws ConfigError. */
  read(given: readonly Given[]): T;
}

interface Common {
  name: string;
  help: string;
  details?: string;
  commands: readonly CommandName[];
  /** Default true for options with a Config field, false otherwise. */
  inFile?: boolean;
  /** Say the default in words when it is computed (e.g. "the nameservers of /etc/resolv.conf"). */
  defaultText?: string;
}

function parseOne<T>(type: ValueType<T>, g: Given): T {
  const v = type.parse(g.value);
  if (v instanceof Invalid) throw new ConfigError(`${g.where}: ${v.reason}`);
  return v;
}

function base(d: Common, arg: string | null, defaults: readonly string[], range: string | undefined, repeatable: boolean, field: string | undefined) {
  return {
    name: d.name, arg, help: d.help, details: d.details ?? null, defaults,
    defaultText: d.defaultText ?? (defaults.length === 0 ? 'none' : defaults.join(' ')),
    range: range ?? null, repeatable, commands: d.commands,
    inFile: d.inFile ?? field !== undefined, field: (field ?? null) as keyof Config | null,
  };
}

/** A single value with a default. */
export function option<T>(d: Common & { arg: string; value: ValueType<T>; default: string; field?: FieldOf<NoInfer<T>> }): Option<T> {
  return { ...base(d, d.arg, [d.default], d.value.range, false, d.field), read: (given) => parseOne(d.value, given[0]!) };
}

/** A single value that may be left unset (null). */
export function optional<T>(d: Common & { arg: string; value: ValueType<T>; field?: FieldOf<NoInfer<T> | null> }): Option<T | null> {
  return { ...base(d, d.arg, [], d.value.range, false, d.field), read: (given) => (given.length === 0 ? null : parseOne(d.value, given[0]!)) };
}

/** A repeatable option: every value is parsed; `combine` turns the list into the field's value. */
export function list<T, R>(d: Common & { arg: string; value: ValueType<T>; default: readonly string[]; combine: (items: T[]) => R; field?: FieldOf<NoInfer<R>> }): Option<R>;
export function list<T>(d: Common & { arg: string; value: ValueType<T>; default: readonly string[]; field?: FieldOf<NoInfer<T>[]> }): Option<T[]>;
export function list<T, R>(d: Common & { arg: string; value: ValueType<T>; default: readonly string[]; combine?: (items: T[]) => R; field?: string }): Option<R | T[]> {
  return {
    ...base(d, d.arg, d.default, d.value.range, true, d.field),
    read: (given) => {
      const items = given.map((g) => parseOne(d.value, g));
      return d.combine ? d.combine(items) : items;
    },
  };
}

/** A switch without a value (--json): true when given. */
export function flag(d: Common & { field?: FieldOf<boolean> }): Option<boolean> {
  return { ...base({ ...d, defaultText: d.defaultText ?? 'off' }, null, [], undefined, false, d.field), read: (given) => given.length > 0 };
}

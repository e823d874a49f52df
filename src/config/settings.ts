// The one parser for flags and the one for the config file, both driven by the option
// declarations, and Settings: what was given (flags over file over defaults), typed on read.
import { readFileSync } from 'node:fs';
import type { CommandName } from './command.js';
import { ConfigError } from './errors.js';
import type { Given, Option } from './option.js';

/** Option name -> the values given for it, in order. */
export type Raw = Map<string, Given[]>;

export class Settings {
  constructor(readonly flags: Raw, readonly file: Raw) {}

  /** The values that count: the flags' when given (even for a repeatable option), else the file's. */
  given(o: Option): Given[] | undefined {
    return this.flags.get(o.name) ?? this.file.get(o.name);
  }

  isSet(o: Option): boolean {
    return this.given(o) !== undefined;
  }

  /** The typed value; a bad value throws ConfigError naming where it was given. */
  get<T>(o: Option<T>): T {
    return o.read(this.given(o) ?? o.defaults.map((value) => ({ value, where: `default ${o.name}` })));
  }
}

export interface CommandLine {
  flags: Raw;
  operands: string[];
  /** --help or -h was given: show the command's help and nothing else. */
  help: boolean;
}

function add(raw: Raw, o: Option, g: Given, twice: string): void {
  const list = raw.get(o.name) ?? [];
  if (list.length > 0 && !o.repeatable) throw new ConfigError(twice);
  list.push(g);
  raw.set(o.name, list);
}

/** `args` of `sinkhole COMMAND` -> flags and operands. `known` is every declared option, to tell "not for this command" from "unknown". */
export function parseCommandLine(command: CommandName, args: readonly string[], known: readonly Option[]): CommandLine {
  const see = `(see "sinkhole ${command} --help")`;
  const flags: Raw = new Map();
  const operands: string[] = [];
  // Asking for help wins over any mistake elsewhere on the line.
  const end = args.indexOf('--');
  if ((end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')) return { flags, operands, help: true };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      operands.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? (eq < 0 ? arg.slice(2) : arg.slice(2, eq)) : arg;
    // A name means one option per command: `--group` of `pause` is not the `group` config line.
    const o = known.find((k) => k.name === name && k.commands.includes(command)) ?? known.find((k) => k.name === name);
    if (o === undefined) throw new ConfigError(`unknown option ${name.startsWith('-') ? name : `--${name}`} ${see}`);
    if (!o.commands.includes(command)) throw new ConfigError(`option --${name} is not for "sinkhole ${command}" ${see}`);
    let value: string;
    if (o.arg === null) {
      if (eq >= 0) throw new ConfigError(`option --${name} takes no value ${see}`);
      value = 'true';
    } else if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`option --${name} needs a value ${see}`);
      value = next;
      i++;
    }
    if (CONTROL.test(value) || value.length > MAX_LINE) throw new ConfigError(`option --${name}: a value with control characters or over ${MAX_LINE} characters ${see}`);
    add(flags, o, { value, where: `--${name}` }, `option --${name} is given twice; give it once`);
  }
  return { flags, operands, help: false };
}

/** Control characters other than tab: a line holding them is no config line (and must not be echoed). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const MAX_LINE = 4096;

/** A config file of `key value` lines (`#` comments) -> raw settings; only options that may be in a file are keys. */
export function parseConfigFile(path: string, known: readonly Option[]): Raw {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const fix = code === 'EACCES' ? '; run as root, or pass --config FILE' : code === 'ENOENT' ? '; create it, or pass --config FILE' : '';
    throw new ConfigError(`cannot read config file ${path}: ${code ?? (err as Error).message}${fix}`);
  }
  const raw: Raw = new Map();
  text.split('\n').forEach((rawLine, index) => {
    const where = `${path}:${index + 1}`;
    // Never echo a binary file or a huge value back into a message (or a terminal).
    if (CONTROL.test(rawLine.replace(/\r$/, ''))) throw new ConfigError(`${where}: control characters in the line: is ${path} a text config file? (see sinkhole.conf(5))`);
    if (rawLine.length > MAX_LINE) throw new ConfigError(`${where}: a line of ${rawLine.length} characters; a setting is one short line (at most ${MAX_LINE})`);
    // A comment starts at a # that begins the line or follows a space: the # inside
    // tls://9.9.9.9#dns.quad9.net names the upstream's certificate, it is not a comment.
    const line = rawLine.replace(/(^|\s)#.*/, '').trim();
    if (line.length === 0) return;
    const m = /^([a-z0-9-]+)\s+(.+)$/.exec(line);
    if (!m) throw new ConfigError(`${where}: expected "setting value", found "${line}"`);
    const name = m[1]!;
    const o = known.find((k) => k.name === name && k.inFile);
    if (o === undefined) throw new ConfigError(`${where}: unknown setting "${name}" (see "sinkhole serve --help")`);
    add(raw, o, { value: m[2]!.trim(), where }, `${where}: "${name}" is set twice; set it once`);
  });
  return raw;
}

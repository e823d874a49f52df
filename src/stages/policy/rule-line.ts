// The grammar of one blocklist line. Accepted forms (README "Blocklist format"):
//   messenger.hotmail.com            plain domain: blocks it and every name below it
//   *.meebo.com                      the same as meebo.com
//   ||meebo.com^                     adblock style
//   @@||login.live.com^              allow rule (beats block rules of equal or less specificity)
//   0.0.0.0 a.example b.example      hosts-file line: the address is ignored
//   ip:64.12.25.0/22                 answer-IP rule: blocks forwarded answers with such addresses
// `#` and `!` start comments (whole-line or after the rule); blank lines are fine.
import { isIP } from 'node:net';
import { textToKey } from '../../wire/names.js';
import { parseCidr, type Cidr } from './cidr.js';

export type RuleLine =
  | { kind: 'name'; allow: boolean; keys: string[] }
  | { kind: 'ip'; cidr: Cidr }
  | { kind: 'none' }
  | { kind: 'invalid'; reason: string };

const NONE: RuleLine = { kind: 'none' };

// Names found at the top of every hosts file. Blocking them would break the machine
// (`local` would swallow every .local name), so hosts lines naming them are passed over.
const HOSTS_PREAMBLE = new Set([
  'localhost', 'localhost.localdomain', 'local', 'broadcasthost', 'ip6-localhost', 'ip6-loopback',
  'ip6-localnet', 'ip6-mcastprefix', 'ip6-allnodes', 'ip6-allrouters', 'ip6-allhosts', '0.0.0.0',
]);

function domainRule(text: string, allow: boolean): RuleLine {
  let name = text;
  if (name.startsWith('*.')) name = name.slice(2);
  if (name.includes('*')) return { kind: 'invalid', reason: 'a wildcard may only stand first, as in *.example.com' };
  if (isIP(name)) {
    return { kind: 'invalid', reason: `an address alone is not a rule (to block answers with it, write ip:${name})` };
  }
  const key = textToKey(name);
  if (typeof key !== 'string') return { kind: 'invalid', reason: key.error };
  return { kind: 'name', allow, keys: [key] };
}

function adblockRule(text: string, allow: boolean): RuleLine {
  // `||example.com^`, optionally followed by `|`; modifiers such as `$important` are not ours.
  if (text.includes('$')) return { kind: 'invalid', reason: 'adblock modifiers ($...) are not supported' };
  const m = /^\|\|([^/^|]+)\^\|?$/.exec(text);
  if (!m) return { kind: 'invalid', reason: 'adblock rules must look like ||example.com^' };
  return domainRule(m[1]!, allow);
}

export function parseRuleLine(raw: string): RuleLine {
  let line = raw;
  // Host names cannot contain # or !, so the first of either starts a comment.
  const hash = line.indexOf('#');
  if (hash >= 0) line = line.slice(0, hash);
  const bang = line.indexOf('!');
  if (bang >= 0) line = line.slice(0, bang);
  line = line.trim();
  if (line.length === 0) return NONE;

  if (line.startsWith('@@')) {
    const rest = line.slice(2);
    return rest.startsWith('||') ? adblockRule(rest, true) : domainRule(rest, true);
  }
  if (line.startsWith('||')) return adblockRule(line, false);
  if (line.startsWith('ip:')) {
    const cidr = parseCidr(line.slice(3).trim());
    return 'error' in cidr ? { kind: 'invalid', reason: cidr.error } : { kind: 'ip', cidr };
  }
  const fields = line.split(/\s+/);
  if (fields.length === 1) return domainRule(fields[0]!, false);
  if (isIP(fields[0]!) === 0) {
    return { kind: 'invalid', reason: 'several words, but the first is not an address (hosts lines start with one)' };
  }
  const keys: string[] = [];
  for (const name of fields.slice(1)) {
    if (HOSTS_PREAMBLE.has(name.toLowerCase())) continue;
    const rule = domainRule(name, false);
    if (rule.kind !== 'name') return rule;
    keys.push(rule.keys[0]!);
  }
  return keys.length === 0 ? NONE : { kind: 'name', allow: false, keys };
}

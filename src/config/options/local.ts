// What the server answers from its own knowledge (the local stage): ANY, hosts files, the
// private reverse zones.
import { list, option, optional } from '../option.js';
import { checked, oneOf, text } from '../values.js';
import { textToKey } from '../../wire/names.js';
import type { Area } from './area.js';

export const anyQueries = option({
  name: 'any-queries', arg: 'minimal|forward', value: oneOf(['minimal', 'forward'] as const, 'any-queries'), default: 'minimal',
  commands: ['serve'], field: 'anyQueries',
  help: 'answer ANY with one HINFO record (RFC 8482), or forward it like any other type',
  details: 'ANY answers are many times the size of the query, a favourite of reflection attacks; no stub resolver needs them.',
});

export const privateReverse = option({
  name: 'private-reverse', arg: 'local|forward', value: oneOf(['local', 'forward'] as const, 'private-reverse'), default: 'local',
  commands: ['serve'], field: 'privateReverse',
  help: 'answer reverse lookups of private and special addresses, and home.arpa, here with NXDOMAIN (RFC 6303)',
  details: 'Covers 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, the documentation ranges, ::1, fc00::/7, fe80::/10, 2001:db8::/32 and home.arpa. A forward-zone for one of them wins over this. `forward` sends them upstream.',
});

export const hostsFile = list({
  name: 'hosts-file', arg: 'FILE', value: text, default: [], commands: ['serve'], field: 'hostsFiles',
  help: 'answer A, AAAA and PTR for the names in FILE (/etc/hosts format); re-read when it changes',
  details: 'Answers carry a TTL of 30 seconds and are logged with the verdict local. A bad line is skipped with a warning naming file:line.',
});

export const localDomain = optional({
  name: 'local-domain', arg: 'DOMAIN', value: checked((t) => (typeof textToKey(t) === 'string' ? t.toLowerCase().replace(/\.$/, '') : null), (t) => `"${t}" is not a domain name (e.g. lan)`),
  commands: ['serve'], field: 'localDomain',
  help: 'a name without a dot in a hosts file is also known as NAME.DOMAIN (e.g. lan); with client-names, DHCP names answer as NAME and NAME.DOMAIN',
});

export const clientNames = list({
  name: 'client-names', arg: 'FILE', value: text, default: [], commands: ['serve'], field: 'clientNames',
  help: 'names for clients, from FILE: dnsmasq leases, ISC dhcpd leases or a hosts file (repeatable); re-read when it changes',
  details: 'The format is told from the content. Names are shown in the blocked-query log, the query log, the history, sinkhole stats and /api/stats; a group may list names (group boss laptop-ceo); with local-domain the names answer A and PTR as NAME and NAME.DOMAIN. A bad line is skipped with a warning naming file:line.',
});

export const localArea: Area = { title: 'Local answers', options: [anyQueries, privateReverse, hostsFile, localDomain, clientNames] };

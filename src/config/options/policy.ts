// What is blocked and how a blocked name is answered (the policy stage).
import { list, option } from '../option.js';
import { cidr, ipAddress, text, wholeNumber } from '../values.js';
import type { Area } from './area.js';

export const blocklists = option({
  name: 'blocklists', arg: 'DIR', value: text, default: './blocklists', commands: ['serve', 'check', 'list', 'enable', 'disable'], field: 'blocklists',
  help: 'folder whose *.txt files hold the rules',
  details: 'Every *.txt file directly in DIR is read; DIR/available/ holds the bundles that are switched off.',
});

export const exemptClient = list({
  name: 'exempt-client', arg: 'CIDR', value: cidr, default: [], commands: ['serve', 'check'], field: 'exemptClients',
  help: 'clients that are never blocked (e.g. an admin PC)',
});

export const sinkholeIpv4 = option({
  name: 'sinkhole-ipv4', arg: 'ADDR', value: ipAddress(4), default: '127.0.0.1', commands: ['serve', 'check'], field: 'sinkholeIpv4',
  help: 'address in A answers for blocked names (0.0.0.0 also works)',
});

export const sinkholeIpv6 = option({
  name: 'sinkhole-ipv6', arg: 'ADDR', value: ipAddress(6), default: '::1', commands: ['serve', 'check'], field: 'sinkholeIpv6',
  help: 'address in AAAA answers for blocked names',
});

export const blockedTtl = option({
  name: 'blocked-ttl', arg: 'SECONDS', value: wholeNumber(0, 86400), default: '10', commands: ['serve'], field: 'blockedTtl',
  help: 'TTL of blocked answers (short, so unblocking takes effect soon)',
});

export const policyArea: Area = { title: 'Blocking', options: [blocklists, exemptClient, sinkholeIpv4, sinkholeIpv6, blockedTtl] };

// Who gets answers at all (the guard stage).
import type { Cidr } from '../../stages/policy/cidr.js';
import { list } from '../option.js';
import { cidrOrAny } from '../values.js';
import type { Area } from './area.js';

export const DEFAULT_ALLOW_NETS = [
  '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16',
  '::1/128', 'fc00::/7', 'fe80::/10',
];

export const allowNet = list({
  name: 'allow-net', arg: 'CIDR|any', value: cidrOrAny, default: DEFAULT_ALLOW_NETS,
  // `any` anywhere in the list: every client (an open resolver, logged as a warning).
  combine: (items: (Cidr | 'any')[]): Cidr[] | null => (items.includes('any') ? null : items.filter((i): i is Cidr => i !== 'any')),
  commands: ['serve', 'check'], field: 'allowNets',
  help: 'clients that get answers; others get REFUSED. `any` makes an open resolver',
  details: 'Giving allow-net replaces the whole default list; `any` is logged as a warning at startup.',
});

export const guardArea: Area = { title: 'Clients', options: [allowNet] };

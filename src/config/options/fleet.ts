// A fleet of servers sharing one policy, their caches and their figures through Redis
// (src/fleet/). Without --redis nothing of this is used: a single node, as before.
import { ConfigError } from '../errors.js';
import { option, optional } from '../option.js';
import { checked, oneOf, text } from '../values.js';
import type { Area } from './area.js';
import { hostname } from 'node:os';

/** redis://[user:password@]host[:port][/db] or rediss:// (TLS). */
export const redisUrl = checked<string>((t) => {
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return null;
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return null;
  if (u.hostname === '' || !/^(\/\d{0,2})?$/.test(u.pathname)) return null;
  return t;
}, (t) => `"${t.replace(/\/\/[^@/]*@/, '//***@')}" is not a Redis URL; write redis://[user:password@]host:port[/db] or rediss://...`, 'redis://[user:password@]host[:port][/db], rediss://...');

export const redis = optional({
  name: 'redis', arg: 'URL', value: redisUrl, commands: ['serve', 'stats', 'fleet', 'report'], field: 'redis',
  help: 'join a fleet through this Redis (or Valkey): one policy, a shared cache and fleet-wide figures',
  details: 'redis://[user:password@]host:port[/db], or rediss:// for TLS. Redis is never asked while a query waits; when it is unreachable the node serves its last applied policy and catches up when it returns. See docs/fleet.md.',
});

export const redisPasswordFile = optional({
  name: 'redis-password-file', arg: 'FILE', value: text, commands: ['serve', 'stats', 'fleet', 'report'], field: 'redisPasswordFile',
  help: 'read the Redis password from FILE (keeps it out of the command line and the config file)',
});

export const redisCa = optional({
  name: 'redis-ca', arg: 'FILE', value: text, commands: ['serve', 'stats', 'fleet', 'report'], field: 'redisCa',
  help: 'trust this CA (PEM) for a rediss:// connection',
});

export const nodeName = option({
  name: 'node-name', arg: 'NAME', value: { parse: (t: string) => t }, default: '', commands: ['serve'], field: 'nodeName', defaultText: 'the host name',
  help: 'this server\'s name in the fleet',
});

export const site = option({
  name: 'site', arg: 'NAME', value: text, default: 'default', commands: ['serve'], field: 'site',
  help: 'the site this server belongs to, for the fleet figures',
});

export const fleetRole = option({
  name: 'fleet-role', arg: 'ROLE', value: oneOf(['primary', 'replica'] as const, 'fleet role'), default: 'replica', commands: ['serve'], field: 'fleetRole',
  help: 'primary: publishes its blocklist folder to the fleet; replica: follows the primary',
  details: 'One primary per fleet: a second one exits with status 1 naming the live one. A replica ignores its own blocklist folder while it follows.',
});


export const fleetArea: Area = {
  title: 'Fleet',
  options: [redis, redisPasswordFile, redisCa, nodeName, site, fleetRole],
  finish: (config) => {
    if (config.nodeName === '') config.nodeName = hostname();
    if (config.redis === null && (config.redisCa !== null || config.redisPasswordFile !== null)) {
      throw new ConfigError('redis-ca and redis-password-file need --redis URL; add it or leave them out');
    }
    if (config.redisCa !== null && config.redis !== null && !config.redis.startsWith('rediss:')) {
      throw new ConfigError('redis-ca is for a TLS connection; write the URL as rediss://...');
    }
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(config.nodeName)) throw new ConfigError(`node-name "${config.nodeName}": use letters, digits, ".", "_" or "-" (at most 64)`);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(config.site)) throw new ConfigError(`site "${config.site}": use letters, digits, ".", "_" or "-" (at most 64)`);
  },
};

// The answer cache (the cache stage).
import { ConfigError } from '../errors.js';
import { option } from '../option.js';
import { wholeNumber } from '../values.js';
import type { Area } from './area.js';

export const cacheSize = option({
  name: 'cache-size', arg: 'N', value: wholeNumber(0, 10_000_000), default: '10000', commands: ['serve'], field: 'cacheSize',
  help: 'answers kept in the cache; 0 turns the cache off',
});

export const cacheMinTtl = option({
  name: 'cache-min-ttl', arg: 'SECONDS', value: wholeNumber(0, 604800), default: '0', commands: ['serve'], field: 'cacheMinTtl',
  help: 'cache answers at least this long',
});

export const cacheMaxTtl = option({
  name: 'cache-max-ttl', arg: 'SECONDS', value: wholeNumber(0, 604800), default: '86400', commands: ['serve'], field: 'cacheMaxTtl',
  help: 'cache answers at most this long',
});

export const servfailTtl = option({
  name: 'servfail-ttl', arg: 'SECONDS', value: wholeNumber(0, 30), default: '3', commands: ['serve'], field: 'servfailTtl',
  help: 'how long an upstream SERVFAIL is cached',
});

export const staleMaxAge = option({
  name: 'stale-max-age', arg: 'SECONDS', value: wholeNumber(0, 604800), default: '86400', commands: ['serve'], field: 'staleMaxAge',
  help: 'keep answers this long past their TTL, to answer with when no upstream answers (RFC 8767); 0 turns it off',
  details: 'A stale answer carries TTL 30 and, for EDNS clients, Extended DNS Error 3 (Stale Answer). An upstream failure never turns a name the cache knew into SERVFAIL.',
});

export const cacheArea: Area = {
  title: 'Cache',
  options: [cacheSize, cacheMinTtl, cacheMaxTtl, servfailTtl, staleMaxAge],
  finish: (config) => {
    if (config.cacheMinTtl > config.cacheMaxTtl) {
      throw new ConfigError(`cache-min-ttl (${config.cacheMinTtl}) is above cache-max-ttl (${config.cacheMaxTtl}); lower one of them`);
    }
  },
};

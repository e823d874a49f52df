// `sinkhole fleet` (and `sinkhole stats --fleet`): the whole fleet and each node, read from
// the fleet's Redis: heartbeats (a silent node is shown down) and the hourly counts every
// node adds. Needs --redis (and --redis-password-file / --redis-ca as the servers have them).
import { configFrom, ConfigError, UnreachableError, type Config } from '../../config/config.js';
import { option } from '../../config/option.js';
import { oneOf } from '../../config/values.js';
import { redactUrl, RedisLink } from '../../fleet/link.js';
import { readFleetView, renderFleetView } from '../../fleet/view.js';
import type { Command } from './command.js';

export const fleetFormat = option({
  name: 'format', arg: 'FORMAT', value: oneOf(['text', 'json'] as const, 'format'), default: 'text', commands: ['fleet'], inFile: false,
  help: 'text, or json: one JSON object (nodes, hours, sites, perNode, clients, bundles, policyVersion), for scripts',
});

const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined } as unknown as import('../../observe/log.js').Logger;

export async function printFleet(config: Config, json: boolean): Promise<void> {
  if (config.redis === null) throw new ConfigError('the fleet view needs the fleet\'s Redis: pass --redis URL or --config FILE that sets redis');
  const link = new RedisLink({ url: config.redis, passwordFile: config.redisPasswordFile, ca: config.redisCa, maxBackoffMs: 500 }, quiet);
  try {
    if (!(await link.start(3000))) throw new UnreachableError(`cannot reach Redis at ${redactUrl(config.redis)} within 3 s; is it running, and are the URL and password right?`);
    const view = await readFleetView(link);
    console.log(json ? JSON.stringify(view) : renderFleetView(view));
  } finally {
    await link.close();
  }
}

export const fleetCommand: Command = {
  name: 'fleet', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'print the whole fleet and each node, from the fleet\'s Redis',
  description: 'Prints every node of the fleet (site, role, version, uptime, policy version, queries, blocked, upstream health; a node whose heartbeat stopped is shown DOWN) ' +
    'and the counts of the last 24 hours per site, client and bundle, as every node added them to Redis. Same as "sinkhole stats --fleet". Exit status 3 when Redis does not answer.',
  own: [fleetFormat],
  run: async ({ settings }) => {
    await printFleet(configFrom(settings, { needUpstreams: false }), settings.get(fleetFormat) === 'json');
    return 0;
  },
};

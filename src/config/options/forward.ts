// Where queries that are not blocked or cached go (the forward stage).
import { ConfigError } from '../errors.js';
import { list, option } from '../option.js';
import { upstreamsFromResolvConf } from '../resolv-conf.js';
import { endpoint, text, wholeNumber } from '../values.js';
import type { Area } from './area.js';

export const upstream = list({
  name: 'upstream', arg: 'HOST[:PORT]', value: endpoint(53), default: [], commands: ['serve'], field: 'upstreams',
  defaultText: 'the nameservers in /etc/resolv.conf, less this server\'s own addresses',
  help: 'resolver to forward to, tried in turn on failure; port 53 if left out',
  details: 'IP addresses only: a DNS server must not need DNS to start.',
});

export const upstreamTimeout = option({
  name: 'upstream-timeout', arg: 'MS', value: wholeNumber(50, 10000), default: '1000', commands: ['serve'], field: 'upstreamTimeoutMs',
  help: 'longest wait for an upstream before asking again (adapts to its round-trip time)',
});

export const resolvConf = option({
  name: 'resolv-conf', arg: 'FILE', value: text, default: '/etc/resolv.conf', commands: ['serve'], field: 'resolvConf',
  help: 'where to find nameservers when no --upstream is given',
});

export const forwardArea: Area = {
  title: 'Upstreams',
  options: [upstream, upstreamTimeout, resolvConf],
  finish: (config, settings, ctx) => {
    if (settings.isSet(upstream)) config.upstreamSource = 'configuration';
    else if (!ctx.needUpstreams) config.upstreamSource = 'none';
    else {
      config.upstreams = upstreamsFromResolvConf(config.resolvConf, config.listen);
      config.upstreamSource = config.resolvConf;
      if (config.upstreams.length === 0) {
        throw new ConfigError(`no upstream resolver: ${config.resolvConf} names none that is not this server itself; pass --upstream ADDR (e.g. --upstream 192.0.2.1)`);
      }
    }
    for (const u of config.upstreams) {
      if (config.listen.some((l) => l.host === u.host && l.port === u.port)) {
        throw new ConfigError(`upstream ${u.label} is this server's own listen address (a forwarding loop); choose another --upstream`);
      }
    }
  },
};

// Where DNS is served: listen addresses and the limits on client TCP connections.
import { ConfigError } from '../errors.js';
import { list, option } from '../option.js';
import { endpoint, wholeNumber } from '../values.js';
import type { Area } from './area.js';

export const listen = list({
  name: 'listen', arg: 'ADDR:PORT', value: endpoint(undefined), default: ['127.0.0.1:5353', '[::1]:5353'],
  commands: ['serve', 'wait-ready'], field: 'listen',
  help: 'address to serve DNS on, UDP and TCP; IPv6 as [::1]:5353',
  details: 'If the default [::1] is missing (no IPv6), it serves IPv4 and says so. wait-ready asks the first one.',
});

export const tcpIdleTimeout = option({
  name: 'tcp-idle-timeout', arg: 'MS', value: wholeNumber(100, 600000), default: '10000', commands: ['serve'], field: 'tcpIdleTimeoutMs',
  help: 'close client TCP connections idle this long',
});

export const tcpMaxConnections = option({
  name: 'tcp-max-connections', arg: 'N', value: wholeNumber(1, 100000), default: '256', commands: ['serve'], field: 'tcpMaxConnections',
  help: 'open client TCP connections at most, per listen address',
});

export const tcpMaxPerClient = option({
  name: 'tcp-max-per-client', arg: 'N', value: wholeNumber(1, 100000), default: '32', commands: ['serve'], field: 'tcpMaxPerClient',
  help: 'open TCP (and DoT) connections from one client address at most',
  details: 'At either cap the connection idle the longest is closed to make room (RFC 7766 6.2.3); a new one is refused only when every open one is busy. A query must arrive whole within 2 s of its first byte, so a trickle of bytes cannot hold a connection.',
});

export const netArea: Area = {
  title: 'Listening',
  options: [listen, tcpIdleTimeout, tcpMaxConnections, tcpMaxPerClient],
  finish: (config, settings) => {
    config.listenIsDefault = !settings.isSet(listen);
    const seen = new Set<string>();
    for (const e of config.listen) {
      // Binding it twice would fail as "in use by another program": say what really happened.
      if (seen.has(e.label)) throw new ConfigError(`listen ${e.label} is given twice; give each address once`);
      seen.add(e.label);
    }
  },
};

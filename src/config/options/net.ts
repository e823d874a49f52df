// Where DNS is served: listen addresses and the limits on client TCP connections.
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

export const netArea: Area = {
  title: 'Listening',
  options: [listen, tcpIdleTimeout, tcpMaxConnections],
  finish: (config, settings) => {
    config.listenIsDefault = !settings.isSet(listen);
  },
};

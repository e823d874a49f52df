// `sinkhole wait-ready`: exits 0 once the server configured by the same flags answers a
// query on its first listen address. The server binds its sockets only after its rules are
// loaded, so an answer means both. systemd runs this as ExecStartPost, so the unit becomes
// active when DNS is really being served (Node 20 cannot write to systemd's notify socket).
import { createSocket } from 'node:dgram';
import { configFrom, UnreachableError, type Config } from '../../config/config.js';
import { option } from '../../config/option.js';
import { positiveSeconds } from '../../config/values.js';
import type { Command } from './command.js';
import { CANARY_DOMAIN } from '../../stages/guard/canary.js';
import { buildQuery } from '../../wire/build-query.js';

export async function waitReady(config: Config, timeoutMs: number): Promise<void> {
  const listen = config.listen[0]!;
  // A wildcard listen address is reached through loopback.
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  // The canary is answered from the server's own rules: no upstream needs to be up.
  const query = buildQuery(CANARY_DOMAIN, 'A', { id: 0x5ead });
  try {
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - started > timeoutMs) {
          clearInterval(timer);
          reject(new UnreachableError(`no answer from ${listen.label} within ${timeoutMs / 1000} s; see "journalctl -u sinkhole"`));
          return;
        }
        socket.send(query, listen.port, host);
      }, 100);
      socket.on('message', (msg) => {
        if (msg.length >= 12 && msg.readUInt16BE(0) === 0x5ead) {
          clearInterval(timer);
          resolve();
        }
      });
      socket.on('error', () => undefined);
      socket.send(query, listen.port, host);
    });
  } finally {
    socket.close();
  }
}

export const timeoutOption = option({
  name: 'timeout', arg: 'SECONDS', value: positiveSeconds, default: '60', commands: ['wait-ready'],
  help: 'give up after this long (exit status 3)',
});

export const waitReadyCommand: Command = {
  name: 'wait-ready', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'wait until the configured server answers (systemd\'s ExecStartPost)',
  description: 'Exits 0 once the server configured by the same settings answers a query on its first listen address; the server binds its sockets only after its rules are loaded, so an answer means both. ' +
    'systemd runs it as ExecStartPost, so the unit becomes active only when DNS is really served. Exit status 3 when nothing answers within --timeout.',
  own: [timeoutOption],
  run: async ({ settings }) => {
    await waitReady(configFrom(settings, { needUpstreams: false }), settings.get(timeoutOption) * 1000);
    return 0;
  },
};

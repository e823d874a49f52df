// Options of the process itself: where settings come from, and how many processes serve.
import { option, optional } from '../option.js';
import { READS_CONFIG } from '../command.js';
import { text, wholeNumber } from '../values.js';
import { SYSTEM_CONFIG } from '../paths.js';
import type { Area } from './area.js';

export const config = optional({
  name: 'config', arg: 'FILE', value: text, commands: READS_CONFIG, inFile: false,
  help: 'read settings from FILE (`key value` lines, see sinkhole.conf(5)); flags override it',
  details: `An installed copy reads ${SYSTEM_CONFIG} when it exists; the environment variable SINKHOLE_CONFIG names another file (empty: none).`,
  defaultText: `${SYSTEM_CONFIG} when installed and present, else none`,
});

export const workers = option({
  name: 'workers', arg: 'N', value: wholeNumber(1, 64), default: '1', commands: ['serve'], field: 'workers',
  help: 'processes answering on the same sockets (one per core is plenty)',
  details: 'Each keeps its own rules and cache. On Node 22.12 or newer each worker has its own UDP socket (SO_REUSEPORT) and the kernel spreads the queries; on Node 20 they share the primary\'s one.',
});

export const stateDir = option({
  name: 'state-dir', arg: 'DIR', value: text, default: './state', commands: ['serve', 'check', 'report', 'pause', 'resume', 'lists'], field: 'stateDir',
  help: 'where the server keeps what must survive a restart: history (history.sqlite), pauses, downloaded lists',
  details: 'Created when missing. The systemd unit uses /var/lib/sinkhole (StateDirectory=). A full or read-only state folder never stops DNS: writing is retried, with one log line.',
});

export const processArea: Area = { title: 'Settings and processes', options: [config, workers, stateDir] };

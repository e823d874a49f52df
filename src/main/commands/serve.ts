// `sinkhole serve`: the DNS server in the foreground.
import { configFrom } from '../../config/config.js';
import { serve } from '../serve.js';
import type { Command } from './command.js';

export const serveCommand: Command = {
  name: 'serve', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'run the DNS server in the foreground',
  description: 'Runs the DNS server in the foreground: loads the blocklists, binds every listen address (UDP and TCP), and answers until stopped. ' +
    'It says "ready" only when the rules are loaded and every socket is bound. ' +
    'SIGTERM and SIGINT stop it cleanly (queries in flight are answered, exit status 0); SIGHUP reloads the blocklists and reopens the logs. ' +
    'Every option below but --config can also be a line of the config file.',
  own: [],
  run: async ({ settings }) => {
    await serve(configFrom(settings));
    return -1; // keeps running; exits from the signal handler
  },
};

// `sinkhole serve`: the DNS server in the foreground.
import { configFrom, SERVER_OPTIONS } from '../../config/config.js';
import { parseConfigFile, Settings } from '../../config/settings.js';
import { serve } from '../serve.js';
import type { Command } from './command.js';

export const serveCommand: Command = {
  name: 'serve', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'run the DNS server in the foreground',
  description: 'Runs the DNS server in the foreground: loads the blocklists, binds every listen address (UDP and TCP), and answers until stopped. ' +
    'It says "ready" only when the rules are loaded and every socket is bound. ' +
    'SIGTERM and SIGINT stop it cleanly (queries in flight are answered, exit status 0); SIGHUP reloads the blocklists, re-reads the config file\'s group, schedule, block, allow, list-url, exempt-client, allow-net and upstream lines (a bad line keeps the running policy; other changed settings are named as needing a restart) and reopens the logs; POST /reload on the admin API does the same but for the logs. ' +
    'Every option below but --config can also be a line of the config file.',
  own: [],
  run: async ({ settings, configFile }) => {
    // SIGHUP reads the file again; the command line's flags still win over it.
    const reread = configFile === null ? null : () => configFrom(new Settings(settings.flags, parseConfigFile(configFile, SERVER_OPTIONS)));
    await serve(configFrom(settings), reread);
    return -1; // keeps running; exits from the signal handler
  },
};

// The admin HTTP API (health, metrics, reload, check), also read by `sinkhole stats`.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { list, option, optional } from '../option.js';
import { endpoint, offOr, text } from '../values.js';
import type { Area } from './area.js';

export const admin = option({
  name: 'admin', arg: 'ADDR:PORT', value: offOr(endpoint(undefined)), default: 'off', commands: ['serve', 'stats', 'pause', 'resume', 'lists'], field: 'admin',
  help: 'serve the admin HTTP API (health, metrics, reload, check) here; beyond loopback only with --admin-token',
  details: 'sinkhole stats reads the figures from it; sinkhole pause, resume and lists update act through it.',
});

export const adminToken = optional({
  name: 'admin-token', arg: 'TOKEN', value: text, commands: ['serve', 'stats', 'pause', 'resume', 'lists'], field: 'adminToken',
  help: 'require "Authorization: Bearer TOKEN" on every admin request',
  details: 'A config file holding a token should be readable only by root and the service.',
});

export const adminTokenFile = optional({
  name: 'admin-token-file', arg: 'FILE', value: text, commands: ['serve', 'stats', 'pause', 'resume', 'lists'], inFile: true,
  help: 'read the admin token from FILE (its first line), so the config file need not hold it',
  details: 'The file should be readable only by root and the service (chmod 0640). Not together with --admin-token.',
});

export const adminHostname = list({
  name: 'admin-hostname', arg: 'NAME', value: text, default: [], commands: ['serve'], field: 'adminHostnames',
  help: 'a name the admin API may be reached by, besides its address and localhost',
  details: 'Requests whose Host header names anything else are refused (403), so that a web page cannot reach the API through DNS rebinding.',
});

export const adminArea: Area = {
  title: 'Admin API',
  options: [admin, adminToken, adminTokenFile, adminHostname],
  finish: (config, settings) => {
    const file = settings.given(adminTokenFile)?.[0];
    if (file !== undefined) {
      if (config.adminToken !== null) throw new ConfigError(`${file.where}: give --admin-token or --admin-token-file, not both`);
      let token: string;
      try {
        token = readFileSync(file.value, 'utf8').split('\n')[0]!.trim();
      } catch (err) {
        throw new ConfigError(`${file.where}: cannot read ${file.value} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a readable file holding the token`);
      }
      if (token === '') throw new ConfigError(`${file.where}: ${file.value} is empty; write the token on its first line`);
      config.adminToken = token;
    }
    const a = config.admin;
    if (a === null || config.adminToken !== null) return;
    if (!(a.host.startsWith('127.') || a.host === '::1')) {
      const where = settings.given(admin)![0]!.where;
      throw new ConfigError(`${where}: the admin API on ${a.label} would be reachable from the network; add --admin-token TOKEN or listen on 127.0.0.1`);
    }
  },
};

// The admin HTTP API (health, metrics, reload, check), also read by `sinkhole stats`.
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

export const adminHostname = list({
  name: 'admin-hostname', arg: 'NAME', value: text, default: [], commands: ['serve'], field: 'adminHostnames',
  help: 'a name the admin API may be reached by, besides its address and localhost',
  details: 'Requests whose Host header names anything else are refused (403), so that a web page cannot reach the API through DNS rebinding.',
});

export const adminArea: Area = {
  title: 'Admin API',
  options: [admin, adminToken, adminHostname],
  finish: (config, settings) => {
    const a = config.admin;
    if (a === null || config.adminToken !== null) return;
    if (!(a.host.startsWith('127.') || a.host === '::1')) {
      const where = settings.given(admin)![0]!.where;
      throw new ConfigError(`${where}: the admin API on ${a.label} would be reachable from the network; add --admin-token TOKEN or listen on 127.0.0.1`);
    }
  },
};

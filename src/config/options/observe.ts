// What the server writes down: its log and the query log.
import { LOG_LEVELS } from '../../observe/log.js';
import { parseQueryLogMode } from '../../observe/query-log.js';
import { option } from '../option.js';
import { checked, offOr, oneOf, text } from '../values.js';
import type { Area } from './area.js';

export const logLevel = option({
  name: 'log-level', arg: 'LEVEL', value: oneOf(LOG_LEVELS, 'log level'), default: 'info', commands: ['serve'], field: 'logLevel',
  help: 'how much the server logs',
});

export const queryLog = option({
  name: 'query-log', arg: 'stdout|FILE|off', value: offOr(text), default: 'off', commands: ['serve'], field: 'queryLog',
  help: 'one JSON line per query (client, name, type, verdict, rule, rcode, upstream, ms); reopened on SIGHUP',
});

export const queryLogMode = option({
  name: 'query-log-mode', arg: 'all|blocked|sample:N', default: 'all', commands: ['serve'], field: 'queryLogMode',
  value: checked(parseQueryLogMode, (t) => `"${t}" must be all, blocked or sample:N (e.g. sample:100)`),
  help: 'which queries the query log keeps; blocked queries are always kept',
});

export const observeArea: Area = { title: 'Logs', options: [logLevel, queryLog, queryLogMode] };

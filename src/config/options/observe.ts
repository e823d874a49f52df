// What the server writes down: its log and the query log.
import { LOG_LEVELS } from '../../observe/log.js';
import { parseQueryLogMode } from '../../observe/query-log.js';
import { option } from '../option.js';
import { checked, offOr, oneOf, text, wholeNumber } from '../values.js';
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

export const history = option({
  name: 'history', arg: 'blocked|all|off', value: oneOf(['blocked', 'all', 'off'] as const, 'history'), default: 'blocked',
  commands: ['serve'], field: 'history',
  help: 'store every blocked attempt (blocked) or every query (all) in STATE-DIR/history.sqlite for sinkhole report',
  details: 'Hourly and daily counts per client and bundle are kept whatever the mode, so reports over months never scan raw rows. Written in batches about once a second by a thread of its own, never on the query path; kill -9 loses at most the last 1.6 seconds (the batch being gathered, and the hand-overs waiting for the writer thread\'s next read and its next commit). The writer runs at the lowest CPU priority: when DNS keeps every core busy, raw rows are dropped and counted (sinkhole_history_dropped_rows_total) while the hourly counts keep every query. See docs/history.md.',
});

export const historyDays = option({
  name: 'history-days', arg: 'DAYS', value: wholeNumber(1, 3650), default: '90', commands: ['serve'], field: 'historyDays',
  help: 'keep raw history rows this many days (the hourly and daily counts twice as long)',
});

export const observeArea: Area = { title: 'Logs and history', options: [logLevel, queryLog, queryLogMode, history, historyDays] };

// `sinkhole pause`, `sinkhole resume` and `sinkhole lists update`: ask the running server
// through its admin API (found like `stats` finds it: --admin, or the config file's admin).
import { configFrom, ConfigError, UnreachableError, type Config } from '../../config/config.js';
import { Invalid, optional, type Option } from '../../config/option.js';
import { Settings } from '../../config/settings.js';
import { parseDuration } from '../../stages/policy/duration.js';
import type { Command } from './command.js';

async function post(config: Config, command: string, path: string): Promise<Record<string, unknown>> {
  if (config.admin === null) throw new ConfigError(`sinkhole ${command} needs the admin API: pass --admin ADDR:PORT (and --admin-token) or --config FILE that sets admin`);
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host === '::' ? '::1' : config.admin.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.admin.port}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: config.adminToken ? { authorization: `Bearer ${config.adminToken}` } : {} });
  } catch (err) {
    throw new UnreachableError(`cannot reach the admin API at ${url}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}; is the server running with --admin?`);
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const message = `the admin API at ${url} answered ${response.status}: ${String(body.error ?? '')}${response.status === 401 ? '; pass --admin-token' : ''}`;
    throw response.status < 500 ? new ConfigError(message) : new UnreachableError(message);
  }
  return body;
}

function describePauses(body: Record<string, unknown>): string {
  const pauses = (body.pauses ?? []) as { group: string; until: string | null }[];
  return pauses.length === 0 ? 'blocking is on for every group' : `paused: ${pauses.map((p) => `${p.group} until ${p.until ?? 'resume'}`).join(', ')}`;
}

const groupName = { parse: (t: string) => (/^[a-z0-9][a-z0-9_-]*$/i.test(t) ? t.toLowerCase() : new Invalid(`"${t}" is not a group name`)), range: 'a group of the config file, or default' };

export const pauseGroup = optional({
  name: 'group', arg: 'GROUP', value: groupName, commands: ['pause'],
  help: 'pause only this group (default: every client)',
});

export const pauseFor = optional({
  name: 'for', arg: 'DURATION', commands: ['pause'],
  value: { parse: (t: string) => { try { return parseDuration(t, ''); } catch { return new Invalid(`"${t}" is not a duration; write e.g. 30s, 15m, 2h or 1h30m`); } }, range: 'e.g. 15m, 2h' },
  help: 'how long (default: until "sinkhole resume")',
});

export const resumeGroup = optional({
  name: 'group', arg: 'GROUP', value: groupName, commands: ['resume'],
  help: 'resume only this group (default: every pause)',
});

/**
 * `--group` of pause and resume shares its name with the config file's `group` lines: it is
 * read from the command line only, and left out of what the config is built from.
 */
function ownGroup(settings: Settings, o: Option<string | null>): { group: string | null; rest: Settings } {
  const given = settings.flags.get(o.name);
  const flags = new Map(settings.flags);
  flags.delete(o.name);
  return { group: given === undefined ? null : o.read(given), rest: new Settings(flags, settings.file) };
}

export const pauseCommand: Command = {
  name: 'pause', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'stop blocking for a group, or for everyone, for a while',
  description: 'Asks the running server (through its admin API, like stats) to stop blocking for GROUP, or for every client, until DURATION has passed or "sinkhole resume". ' +
    'Blocking comes back by itself when the time runs out; the pause survives a restart of the server (it is kept in the state directory).',
  own: [pauseGroup, pauseFor],
  run: async ({ settings }) => {
    const { group, rest } = ownGroup(settings, pauseGroup);
    const forMs = settings.get(pauseFor);
    const params = new URLSearchParams();
    if (group !== null) params.set('group', group);
    if (forMs !== null) params.set('for', `${Math.ceil(forMs / 1000)}s`);
    const query = params.toString();
    const body = await post(configFrom(rest, { needUpstreams: false }), 'pause', `/api/pause${query === '' ? '' : `?${query}`}`);
    console.log(`blocking paused for ${group ?? 'every group'} ${body.until ? `until ${String(body.until)}` : 'until "sinkhole resume"'}; ${describePauses(body)}`);
    return 0;
  },
};

export const resumeCommand: Command = {
  name: 'resume', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'block again after "sinkhole pause"',
  description: 'Ends every pause, or GROUP\'s, on the running server (through its admin API).',
  own: [resumeGroup],
  run: async ({ settings }) => {
    const { group, rest } = ownGroup(settings, resumeGroup);
    const body = await post(configFrom(rest, { needUpstreams: false }), 'resume', `/api/resume${group !== null ? `?group=${encodeURIComponent(group)}` : ''}`);
    console.log(`${body.resumed ? 'resumed' : 'nothing was paused'}${group !== null ? ` (${group})` : ''}; ${describePauses(body)}`);
    return 0;
  },
};

export const listsCommand: Command = {
  name: 'lists', operands: 'update', minOperands: 1, maxOperands: 1,
  wrongOperands: 'lists takes one word: "sinkhole lists update"',
  summary: 'fetch every list-url now',
  description: 'Asks the running server (through its admin API) to fetch every list-url now, and prints what each fetch did; ' +
    'what was fetched is in force when the command returns.',
  own: [],
  run: async ({ settings, operands }) => {
    if (operands[0] !== 'update') throw new ConfigError(`lists takes one word: "sinkhole lists update", not "${operands[0]}"`);
    const body = await post(configFrom(settings, { needUpstreams: false }), 'lists update', '/api/lists/update');
    const lists = (body.lists ?? []) as { bundle: string; outcome: string; rules: number; reason?: string }[];
    console.log(lists.length === 0 ? String(body.note ?? 'no list-url lines are configured')
      : lists.map((l) => `${l.bundle}: ${l.outcome}, ${l.rules} rules${l.reason ? ` (${l.reason})` : ''}`).join('\n'));
    return 0;
  },
};

// `sinkhole pause`, `sinkhole resume` and `sinkhole lists update`: asks the running server
// through its admin API (found like `stats` finds it: --admin, or --config with admin).
import type { Config } from '../../config/config.js';
import { ConfigError } from '../../config/config.js';
import { parseDuration } from '../../stages/policy/duration.js';

async function post(config: Config, command: string, path: string): Promise<Record<string, unknown>> {
  if (config.admin === null) throw new ConfigError(`sinkhole ${command} needs the admin API: pass --admin ADDR:PORT (and --admin-token) or --config FILE that sets admin`);
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host === '::' ? '::1' : config.admin.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.admin.port}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: config.adminToken ? { authorization: `Bearer ${config.adminToken}` } : {} });
  } catch (err) {
    throw new ConfigError(`cannot reach the admin API at ${url}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}; is the server running with --admin?`);
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) throw new ConfigError(`the admin API at ${url} answered ${response.status}: ${String(body.error ?? '')}${response.status === 401 ? '; pass --admin-token' : ''}`);
  return body;
}

function describePauses(body: Record<string, unknown>): string {
  const pauses = (body.pauses ?? []) as { group: string; until: string | null }[];
  return pauses.length === 0 ? 'blocking is on for every group' : `paused: ${pauses.map((p) => `${p.group} until ${p.until ?? 'resume'}`).join(', ')}`;
}

export async function pauseCommand(config: Config, group: string | null, forText: string | null): Promise<string> {
  const params = new URLSearchParams();
  if (group !== null) params.set('group', group);
  if (forText !== null) params.set('for', String(parseDuration(forText, '--for') / 1000) + 's');
  const body = await post(config, 'pause', `/api/pause${params.size > 0 ? `?${params}` : ''}`);
  return `blocking paused for ${group ?? 'every group'} ${body.until ? `until ${String(body.until)}` : 'until "sinkhole resume"'}; ${describePauses(body)}`;
}

export async function resumeCommand(config: Config, group: string | null): Promise<string> {
  const body = await post(config, 'resume', `/api/resume${group !== null ? `?group=${encodeURIComponent(group)}` : ''}`);
  return `${body.resumed ? 'resumed' : 'nothing was paused'}${group !== null ? ` (${group})` : ''}; ${describePauses(body)}`;
}

export async function updateListsCommand(config: Config): Promise<string> {
  const body = await post(config, 'lists update', '/api/lists/update');
  const lists = (body.lists ?? []) as { bundle: string; outcome: string; rules: number; reason?: string }[];
  if (lists.length === 0) return String(body.note ?? 'no list-url lines are configured');
  return lists.map((l) => `${l.bundle}: ${l.outcome}, ${l.rules} rules${l.reason ? ` (${l.reason})` : ''}`).join('\n');
}

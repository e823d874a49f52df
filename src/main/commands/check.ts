// `sinkhole check NAME`: exit 0 when the name would be answered normally, 1 when blocked or refused.
import { configFrom, ConfigError } from '../../config/config.js';
import { flag, option, optional } from '../../config/option.js';
import { checked } from '../../config/values.js';
import { isIP } from 'node:net';
import { ClientNames } from '../../observe/client-names.js';
import { CLIENT_NAME } from '../../stages/policy/groups.js';
import { NetworkList } from '../../stages/policy/cidr.js';
import { checkName, formatCheck } from '../../stages/policy/check.js';
import { loadBlocklists } from '../../stages/policy/load.js';
import { Policy } from '../../stages/policy/policy.js';
import type { Config } from '../../config/config.js';
import { UnreachableError } from '../../config/errors.js';
import { Forwarder, type ForwardResult } from '../../stages/forward/forwarder.js';
import { buildUpstreams } from '../../stages/forward/upstreams.js';
import { buildQuery } from '../../wire/build-query.js';
import { parseQtype, rcodeName } from '../../wire/constants.js';
import { textToKey } from '../../wire/names.js';
import { ZoneMap } from '../../wire/zone-map.js';
import type { UpstreamSpec } from '../../stages/forward/upstream-url.js';
import { packAnswer, type PackedAnswer } from '../../wire/packed-answer.js';
import { parseQuery, Query } from '../../wire/query.js';
import { GroupRuntime } from '../../stages/policy/group-setup.js';
import { parseAt } from '../../stages/policy/schedules.js';
import { Invalid } from '../../config/option.js';
import pino from 'pino';
import type { Command } from './command.js';

export const qtypeOption = option({
  name: 'type', arg: 'TYPE', default: 'A', commands: ['check'],
  value: checked(parseQtype, (t) => `"${t}" is not a query type (A, AAAA, MX, HTTPS, TYPE65, ...)`, 'A, AAAA, MX, HTTPS, TYPE65, ...'),
  help: 'the query type to check',
});

export const clientOption = optional({
  name: 'client', arg: 'IP|NAME', commands: ['check'],
  value: checked((t) => (isIP(t) !== 0 ? t : CLIENT_NAME.test(t.toLowerCase()) ? t.toLowerCase().replace(/\.$/, '') : null),
    (t) => `"${t}" is neither an IP address nor a client name`),
  help: 'check as this client would be answered (group, allow-net, exempt-client); a NAME is looked up in the client-names files of the config',
});

export const atOption = optional({
  name: 'at', arg: 'WHEN', commands: ['check'],
  value: {
    range: '"mon 12:30", "12:30" (today) or "2026-12-07 12:30"',
    parse: (t: string) => {
      try {
        return parseAt(t, '');
      } catch (err) {
        if (err instanceof ConfigError) return new Invalid(err.message.replace(/^: /, ''));
        throw err;
      }
    },
  },
  help: 'check at this moment of this week, in local time (schedules)',
});

export const jsonOption = flag({ name: 'json', commands: ['check'], help: 'print the result as one JSON object, for scripts' });

export const resolveOption = flag({
  name: 'resolve', commands: ['check'],
  help: 'also ask the upstreams and apply the answer rules (CNAME chain, answer addresses), as the server does',
});

/** Asks the configured upstreams (or the forward-zone's) for NAME, as the server would. */
async function resolve(config: Config, name: string, qtype: number): Promise<{ answer: PackedAnswer | null; note: string }> {
  const zones = new ZoneMap<UpstreamSpec[]>();
  for (const z of config.forwardZones) zones.set(z.key, z.upstreams);
  const key = textToKey(name);
  const m = typeof key === 'string' ? zones.match(key) : -1;
  const q = parseQuery(buildQuery(name, qtype));
  if (!(q instanceof Query)) throw new ConfigError(`"${name}" cannot be asked as a query`);
  // The failure text of an encrypted upstream reaches the result's `failure` too: no separate log here.
  const built = buildUpstreams(m >= 0 ? zones.valueOf(m) : config.upstreams, {
    upstreamCa: config.upstreamCa, bootstrap: config.bootstrap, onFailure: () => undefined, onSocketError: () => undefined,
  });
  const forwarder = new Forwarder({ upstreams: built.targets, timeoutMs: config.upstreamTimeoutMs, budgetMs: 4000 }, () => undefined);
  // The upstream sockets do not keep a process alive (unref'd, for the server's shutdown):
  // this timer does while the answer is awaited.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const result = await new Promise<ForwardResult>((done) => forwarder.forward(q, done));
    if (!result.ok || result.response === null || result.info === null) {
      throw new UnreachableError(`no usable answer from the upstreams for ${name}: ${result.failure}`);
    }
    return { answer: packAnswer(result.response, result.info, Date.now()), note: `${result.upstream} answered ${rcodeName(result.info.rcode)}` };
  } finally {
    clearInterval(keepAlive);
    forwarder.close();
    built.close();
  }
}


export const checkCommand: Command = {
  name: 'check', operands: 'NAME', minOperands: 1, maxOperands: 1,
  wrongOperands: 'check takes one name, e.g. "sinkhole check gateway.messenger.hotmail.com"',
  summary: 'say whether NAME is blocked and by which rules',
  description: 'Says whether NAME would be blocked, the rule that decides it and every rule that covers it, from the rule files on disk (not the running server). ' +
    'Exit status: 0 when the name is answered normally, 1 when it is blocked or the client is refused, 2 on an error.',
  own: [qtypeOption, clientOption, atOption, jsonOption, resolveOption],
  run: async ({ settings, operands }) => {
    const qtype = settings.get(qtypeOption);
    const clientGiven = settings.get(clientOption);
    const withAnswer = settings.get(resolveOption);
    const at = settings.get(atOption);
    const config = configFrom(settings, { needUpstreams: withAnswer });
    // The client-names files, read once as the server reads them: a --client NAME and group members given by name.
    const names = config.clientNames.length === 0 ? null : new ClientNames(config.clientNames, stderrLogger());
    await names?.refresh(true);
    const client = clientGiven === null ? null : clientAddress(clientGiven, names);
    // Groups, schedules and stored subscriptions as the server sees them, and its pauses.
    const groupRuntime = new GroupRuntime(config.policy, config.blocklists, stderrLogger());
    groupRuntime.clientNames = names;
    const report = await loadBlocklists(config.blocklists, new Map(), { extra: groupRuntime.extraLists() });
    for (const f of report.failed) process.stderr.write(`sinkhole: warning: cannot read ${f.path} (${f.reason}); its rules are not considered\n`);
    let groups;
    try {
      groups = groupRuntime.compile();
    } finally {
      groupRuntime.close();
    }
    const context = {
      policy: new Policy(report.ruleSet, config.exemptClients.length === 0 ? null : new NetworkList(config.exemptClients), groups),
      allowNets: config.allowNets === null ? null : new NetworkList(config.allowNets),
      sinkholeIpv4: config.sinkholeIpv4,
      sinkholeIpv6: config.sinkholeIpv6,
    };
    let checked = checkName(context, operands[0]!, qtype, client, null, at);
    if ('error' in checked) throw new ConfigError(checked.error);
    // Like the server: only a name that is not blocked (or refused) is asked upstream.
    const resolved = withAnswer && checked.verdict === 'allowed' ? await resolve(config, operands[0]!, qtype) : null;
    if (resolved !== null) checked = checkName(context, operands[0]!, qtype, client, resolved.answer, at) as typeof checked;
    const named = client !== null && client !== clientGiven ? { ...checked, clientName: clientGiven! } : checked;
    const result = resolved === null ? named : { ...named, resolved: resolved.note };
    console.log(settings.get(jsonOption) ? JSON.stringify(result) : formatCheck(result) + (resolved === null ? '' : `\n  upstream: ${resolved.note}`));
    return result.verdict === 'blocked' || result.verdict === 'refused' ? 1 : 0;
  },
};

/** --client as an address: itself, or the first address the client-names files give the name. */
function clientAddress(given: string, names: ClientNames | null): string {
  if (isIP(given) !== 0) return given;
  if (names === null) throw new ConfigError(`--client ${given}: a client name needs client-names files; add "client-names /var/lib/misc/dnsmasq.leases" (or a hosts file) to the config, or give an address`);
  const address = names.addressesOf(given)[0];
  if (address === undefined) throw new ConfigError(`--client ${given}: no client of that name in ${names.paths.join(', ')}; give an address, or check the name`);
  return address;
}

/** Warnings (a bundle still to be downloaded) as `sinkhole: warning:` lines on stderr, not JSON. */
function stderrLogger(): pino.Logger {
  return pino({ level: 'warn', base: undefined, timestamp: false },
    { write: (line: string) => process.stderr.write(`sinkhole: warning: ${(JSON.parse(line) as { msg: string }).msg}\n`) });
}

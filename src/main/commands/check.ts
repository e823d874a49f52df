// `sinkhole check NAME`: exit 0 when the name would be answered normally, 1 when blocked or refused.
import { configFrom, ConfigError } from '../../config/config.js';
import { flag, option, optional } from '../../config/option.js';
import { checked, ipAddress } from '../../config/values.js';
import { NetworkList } from '../../stages/policy/cidr.js';
import { checkName, formatCheck } from '../../stages/policy/check.js';
import { loadBlocklists } from '../../stages/policy/load.js';
import { Policy } from '../../stages/policy/policy.js';
import { parseQtype } from '../../wire/constants.js';
import type { Command } from './command.js';

export const qtypeOption = option({
  name: 'type', arg: 'TYPE', default: 'A', commands: ['check'],
  value: checked(parseQtype, (t) => `"${t}" is not a query type (A, AAAA, MX, HTTPS, TYPE65, ...)`, 'A, AAAA, MX, HTTPS, TYPE65, ...'),
  help: 'the query type to check',
});

export const clientOption = optional({
  name: 'client', arg: 'IP', value: ipAddress('any'), commands: ['check'],
  help: 'check as this client would be answered (allow-net, exempt-client)',
});

export const jsonOption = flag({ name: 'json', commands: ['check'], help: 'print the result as one JSON object, for scripts' });

export const checkCommand: Command = {
  name: 'check', operands: 'NAME', minOperands: 1, maxOperands: 1,
  wrongOperands: 'check takes one name, e.g. "sinkhole check gateway.messenger.hotmail.com"',
  summary: 'say whether NAME is blocked and by which rules',
  description: 'Says whether NAME would be blocked, the rule that decides it and every rule that covers it, from the rule files on disk (not the running server). ' +
    'Exit status: 0 when the name is answered normally, 1 when it is blocked or the client is refused, 2 on an error.',
  own: [qtypeOption, clientOption, jsonOption],
  run: async ({ settings, operands }) => {
    const qtype = settings.get(qtypeOption);
    const client = settings.get(clientOption);
    const config = configFrom(settings, { needUpstreams: false });
    const report = await loadBlocklists(config.blocklists);
    for (const f of report.failed) process.stderr.write(`sinkhole: warning: cannot read ${f.path} (${f.reason}); its rules are not considered\n`);
    const result = checkName({
      policy: new Policy(report.ruleSet, config.exemptClients.length === 0 ? null : new NetworkList(config.exemptClients)),
      allowNets: config.allowNets === null ? null : new NetworkList(config.allowNets),
      sinkholeIpv4: config.sinkholeIpv4,
      sinkholeIpv6: config.sinkholeIpv6,
    }, operands[0]!, qtype, client);
    if ('error' in result) throw new ConfigError(result.error);
    console.log(settings.get(jsonOption) ? JSON.stringify(result) : formatCheck(result));
    return result.verdict === 'blocked' || result.verdict === 'refused' ? 1 : 0;
  },
};

// `sinkhole list | enable NAME | disable NAME`: bundles are files moved between the
// blocklist folder (enabled) and its available/ folder (disabled); a running server's
// watcher reloads by itself.
import { configFrom } from '../../config/config.js';
import { disableBundle, enableBundle, formatBundles, listBundles } from '../../stages/policy/bundles.js';
import type { Command } from './command.js';

export const listCommand: Command = {
  name: 'list', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'show the bundles: enabled (in the blocklist folder) and available (in its available/)',
  description: 'Shows every bundle (one list file per messenger or service): enabled ones are in the blocklist folder, disabled ones in its available/ folder, with their rule counts and titles.',
  own: [],
  run: async ({ settings }) => {
    console.log(formatBundles(listBundles(configFrom(settings, { needUpstreams: false }).blocklists)));
    return 0;
  },
};

export const enableCommand: Command = {
  name: 'enable', operands: 'NAME', minOperands: 1, maxOperands: 1,
  wrongOperands: 'enable takes one bundle name, e.g. "sinkhole enable whatsapp" (see "sinkhole list")',
  summary: 'move bundle NAME from available/ into the blocklist folder',
  description: 'Enables bundle NAME: moves its file from available/ into the blocklist folder. A running server picks the change up by itself.',
  own: [],
  run: async ({ settings, operands }) => {
    console.log(enableBundle(configFrom(settings, { needUpstreams: false }).blocklists, operands[0]!));
    return 0;
  },
};

export const disableCommand: Command = {
  name: 'disable', operands: 'NAME', minOperands: 1, maxOperands: 1,
  wrongOperands: 'disable takes one bundle name, e.g. "sinkhole disable whatsapp" (see "sinkhole list")',
  summary: 'move bundle NAME from the blocklist folder into available/',
  description: 'Disables bundle NAME: moves its file from the blocklist folder into available/. A running server picks the change up by itself.',
  own: [],
  run: async ({ settings, operands }) => {
    console.log(disableBundle(configFrom(settings, { needUpstreams: false }).blocklists, operands[0]!));
    return 0;
  },
};

// Client groups, schedules, per-group block/allow lines, list subscriptions and the state
// directory (the policy stage's groups: src/stages/policy/README.md). Each line is checked
// here as it is read (one line naming where); how the lines fit together (unknown group,
// bundle or schedule, overlapping windows) is checked when the server compiles them.
import { ConfigError } from '../errors.js';
import { list, type Given } from '../option.js';
import { Invalid, type ValueType } from '../option.js';
import type { Settings } from '../settings.js';
import type { Area } from './area.js';
import { parseAllowLine, parseBlockLine } from '../../stages/policy/group-policy.js';
import { POLICY_SETTINGS, policySettingsFrom } from '../../stages/policy/group-setup.js';
import { parseGroupLine } from '../../stages/policy/groups.js';
import { parseScheduleLine } from '../../stages/policy/schedules.js';
import { parseListUrlLine } from '../../stages/policy/sources/subscription.js';

/** A line checked by one of the policy's parsers (which name where themselves), kept as text. */
function line(parse: (value: string, where: string) => unknown, range: string): ValueType<string> {
  return {
    range,
    parse: (t) => {
      try {
        parse(t, '');
        return t;
      } catch (err) {
        if (err instanceof ConfigError) return new Invalid(err.message.replace(/^: /, ''));
        throw err;
      }
    },
  };
}

const commands = ['serve', 'check'] as const;

export const group = list({
  name: 'group', arg: 'NAME CIDR|IP|CLIENT...', value: line(parseGroupLine, 'a name, then addresses, networks or client names'), default: [], commands: [...commands], inFile: true,
  help: 'clients of group NAME, by address, network or client name (repeatable)',
  details: 'A client belongs to the group of its most specific matching network (an exact address beats a /24); a client in no group is in "default". exempt-client still wins. A client name (from client-names files) stands for each address it has, as exact addresses.',
});

export const schedule = list({
  name: 'schedule', arg: 'NAME DAYS HH:MM-HH:MM', value: line(parseScheduleLine, 'e.g. work mon-fri 08:00-17:30'), default: [], commands: [...commands], inFile: true,
  help: 'a weekly time window of schedule NAME, in local time (repeat for more windows)',
  details: 'DAYS: mon..sun, ranges (mon-fri), lists (mon,wed), daily, weekdays, weekends. A window whose end is not after its start runs into the next day (daily 22:00-06:00). Windows of one schedule may not overlap.',
});

export const block = list({
  name: 'block', arg: 'GROUP BUNDLE...|none', value: line(parseBlockLine, 'e.g. staff whatsapp telegram, staff teams during work, admins none'), default: [],
  commands: [...commands], inFile: true,
  help: 'bundles that block for GROUP; end the line with "during SCHEDULE" to block only then',
  details: 'Without block lines for a group, every enabled bundle blocks for it. A group with block lines is blocked by exactly the bundles listed, enabled or in available/. "default" is the group of clients in no group.',
});

export const allow = list({
  name: 'allow', arg: 'GROUP BUNDLE...', value: line(parseAllowLine, 'e.g. staff whatsapp during lunch'), default: [], commands: [...commands], inFile: true,
  help: 'bundles let through for GROUP, wins over block; end the line with "during SCHEDULE" to allow only then',
});

export const listUrl = list({
  name: 'list-url', arg: 'BUNDLE URL', value: line(parseListUrlLine, 'e.g. whatsapp https://lists.example/whatsapp.txt every 24h'), default: [],
  commands: [...commands], inFile: true,
  help: 'a blocklist fetched from URL and loaded as bundle BUNDLE; end the line with "every DURATION" (default 24h)',
  details: 'Kept in STATE_DIR/lists; the last good copy stays when a fetch fails, returns garbage or shrinks by more than 90%. A body in AdGuard\'s services.json catalogue format makes one bundle per service.',
});


const LINES = { group, schedule, block, allow, 'list-url': listUrl } as const;

/** The policy lines as given, in their file order within each kind, with where each is. */
function givenLines(settings: Settings): { name: string; value: string; where: string }[] {
  return POLICY_SETTINGS.flatMap((name) => (settings.given(LINES[name]) ?? []).map((g: Given) => ({ name, value: g.value, where: g.where })));
}

export const groupsArea: Area = {
  title: 'Groups, schedules and list subscriptions',
  options: [group, schedule, block, allow, listUrl],
  finish: (config, settings) => {
    config.policy = policySettingsFrom(givenLines(settings), config.stateDir);
  },
};

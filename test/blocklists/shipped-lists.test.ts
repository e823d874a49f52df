// The lists we ship: they load without a single invalid line, block the messengers the seeds
// name, and block none of what admins told us must keep working (Windows Update, Hotmail,
// Microsoft's and Yahoo's and AOL's own sites).
import { join } from 'node:path';
import t from 'tap';
import { checkName } from '../../src/stages/policy/check.js';
import { loadBlocklists, listFiles } from '../../src/stages/policy/load.js';
import { Policy } from '../../src/stages/policy/policy.js';
import { QTYPE } from '../../src/wire/constants.js';

const DIR = join(import.meta.dirname, '..', '..', 'blocklists');

async function verdicts(dir: string) {
  const report = await loadBlocklists(dir);
  const ctx = { policy: new Policy(report.ruleSet, null), allowNets: null, sinkholeIpv4: '127.0.0.1', sinkholeIpv6: '::1' };
  return { report, verdict: (name: string) => {
    const r = checkName(ctx, name, QTYPE.A, null);
    if ('error' in r) throw new Error(r.error);
    return r;
  } };
}

const MUST_NOT_BLOCK = [
  'windowsupdate.com', 'www.windowsupdate.com', 'download.windowsupdate.com', 'update.microsoft.com', 'microsoft.com',
  'www.microsoft.com', 'hotmail.com', 'www.hotmail.com', 'outlook.com', 'outlook.live.com', 'live.com', 'login.live.com',
  'login.msn.com', 'msn.com', 'www.msn.com', 'yahoo.com', 'mail.yahoo.com', 'www.yahoo.com', 'aol.com', 'mail.aol.com',
  'office.com', 'bing.com', 'google.com', 'gmail.com',
];

t.test('the default set loads cleanly and blocks the seeds\' messengers', async (t) => {
  const { report, verdict } = await verdicts(DIR);
  t.ok(report.ruleSet.files.length >= 4, 'one file per messenger family');
  t.same(report.ruleSet.files.map((f) => f.bundle).sort(), ['aim-icq', 'msn-messenger', 'web-messengers', 'yahoo-messenger'].sort());
  for (const f of report.ruleSet.files) {
    t.equal(f.invalidCount, 0, `${f.bundle}: no invalid lines`);
  }
  t.same(report.failed, []);
  for (const name of ['messenger.hotmail.com', 'gateway.messenger.hotmail.com', 'meebo.com', 'www.meebo.com', 'e-messenger.net',
    'wbmsn.net', 'msn2go.com', 'iloveim.com', 'clientless.net']) {
    t.equal(verdict(name).verdict, 'blocked', `${name} is blocked`);
  }
});

t.test('the default set blocks none of the names admins must keep', async (t) => {
  const { verdict } = await verdicts(DIR);
  for (const name of MUST_NOT_BLOCK) {
    const r = verdict(name);
    t.equal(r.verdict, 'allowed', `${name} is not blocked${r.decidedBy ? ` (but ${r.decidedBy.file}:${r.decidedBy.line} blocks it)` : ''}`);
  }
});

t.test('no answer-IP rule in the default set covers Microsoft\'s, Yahoo\'s or AOL\'s web addresses seen in the seeds', async (t) => {
  const { report } = await verdicts(DIR);
  const { addressBytes } = await import('../../src/wire/answer.js');
  // Addresses the seeds name as Hotmail / Microsoft web (seed 002: "Allow: 65.54.244.42"; 207.46.x.x serves microsoft.com).
  for (const address of ['65.54.244.42', '207.46.19.190', '207.46.130.100', '13.107.42.14', '20.70.246.20', '40.97.153.146']) {
    t.equal(report.ruleSet.matchAddress(addressBytes(address), 0, 4), -1, `${address} is not in an ip: rule`);
  }
});

t.test('every available bundle loads cleanly and says what it blocks and what it does not', async (t) => {
  const available = await listFiles(join(DIR, 'available'));
  t.ok(available.length >= 10, `${available.length} disabled bundles for today's chat apps`);
  const { report } = await verdicts(join(DIR, 'available'));
  const { readFileSync } = await import('node:fs');
  for (const f of report.ruleSet.files) {
    t.equal(f.invalidCount, 0, `${f.bundle}: no invalid lines`);
    t.ok(f.keys.length > 0, `${f.bundle}: has rules`);
    const header = readFileSync(f.path, 'utf8').split('\n').filter((l) => l.startsWith('#')).join('\n');
    t.match(header, /does not|not block/i, `${f.bundle}: the header says what it deliberately does not block`);
    t.match(header, /source/i, `${f.bundle}: the header names its sources`);
  }
  const { verdict } = await verdicts(join(DIR, 'available'));
  for (const name of ['microsoft.com', 'login.live.com', 'outlook.com', 'office.com', 'facebook.com', 'www.facebook.com', 'google.com']) {
    t.equal(verdict(name).verdict, 'allowed', `enabling every bundle still leaves ${name} alone`);
  }
});

t.test('today\'s chat apps: every rule line names its source; headers say whether the app bypasses DNS; vendor ranges as ip: rules', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { addressBytes } = await import('../../src/wire/answer.js');
  const available = await listFiles(join(DIR, 'available'));
  const names = available.map((p) => p.replace(/^.*\//, '').replace(/\.txt$/, ''));
  for (const app of ['whatsapp', 'telegram', 'signal', 'discord', 'teams', 'skype-teams', 'facebook-messenger', 'snapchat', 'wechat', 'line', 'viber', 'slack', 'kakaotalk']) {
    t.ok(names.includes(app), `${app} is shipped`);
  }
  for (const path of available) {
    const lines = readFileSync(path, 'utf8').split('\n');
    const rules = lines.filter((l) => l.trim() !== '' && !l.startsWith('#'));
    t.same(rules.filter((l) => !/\S\s+#\s*\S/.test(l)), [], `${path}: every rule line has a source comment`);
    t.match(lines.filter((l) => l.startsWith('#')).join('\n'), /Bypasses DNS:/, `${path}: the header says whether the app bypasses DNS`);
  }
  const { report } = await verdicts(join(DIR, 'available'));
  const ipRules = (bundle: string) => report.ruleSet.files.find((f) => f.bundle === bundle)!.ipRules.length;
  t.equal(ipRules('telegram'), 14, 'Telegram\'s published ranges (core.telegram.org/resources/cidr.txt)');
  t.equal(ipRules('teams'), 4, 'Microsoft 365 endpoint set 11 (Teams media)');
  const rangeOf = (address: string) => report.ruleSet.matchAddress(addressBytes(address), 0, address.includes(':') ? 16 : 4);
  t.ok(rangeOf('149.154.167.51') >= 0, 'a Telegram data centre address is covered');
  t.ok(rangeOf('52.113.194.132') >= 0, 'a Teams media address is covered');
  for (const address of ['13.107.42.14', '40.97.153.146', '52.96.0.1', '20.190.128.1', '157.240.1.35', '142.250.74.46', '2603:1036::1']) {
    t.equal(rangeOf(address), -1, `${address} (Microsoft sign-in/Outlook, Meta, Google) is in no ip: rule of any available bundle`);
  }
});

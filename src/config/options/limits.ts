// How much any one client may ask (the guard stage's rate limiter, src/stages/guard/rate-limit.ts).
import { list, option } from '../option.js';
import { cidr, wholeNumber } from '../values.js';
import type { Area } from './area.js';

export const rateLimit = option({
  name: 'rate-limit', arg: 'QPS', value: wholeNumber(0, 1_000_000), default: '200', commands: ['serve'], field: 'rateLimit',
  help: 'queries per second one client address may send, sustained; 0 turns the rate limits off',
  details: 'Over it a client gets up to 20 REFUSED a second, and the rest of its queries are dropped. Generous for a busy desktop or a small NAT.',
});

export const rateBurst = option({
  name: 'rate-burst', arg: 'N', value: wholeNumber(1, 10_000_000), default: '1000', commands: ['serve'], field: 'rateBurst',
  help: 'queries one address may send at once after a quiet spell',
});

export const networkRateLimit = option({
  name: 'network-rate-limit', arg: 'QPS', value: wholeNumber(0, 10_000_000), default: '1000', commands: ['serve'], field: 'networkRateLimit',
  help: 'queries per second all addresses of one /24 (IPv4) or /56 (IPv6) may send together (burst five times as many); 0 = no network limit',
});

export const maxInflightPerClient = option({
  name: 'max-inflight-per-client', arg: 'N', value: wholeNumber(0, 1_000_000), default: '256', commands: ['serve'], field: 'maxInflightPerClient',
  help: 'queries one address may have waiting for the upstreams at once; 0 = no per-client limit',
});

export const maxInflight = option({
  name: 'max-inflight', arg: 'N', value: wholeNumber(1, 10_000_000), default: '8192', commands: ['serve'], field: 'maxInflight',
  help: 'queries waiting for the upstreams at once, in all (bounds memory when an upstream is down)',
});

export const rateExempt = list({
  name: 'rate-exempt', arg: 'CIDR', value: cidr, default: [], commands: ['serve'], field: 'rateExempt',
  help: 'clients never rate-limited (e.g. a mail server, another DNS server forwarding here)',
});

export const udpMaxWait = option({
  name: 'udp-max-wait', arg: 'MS', value: wholeNumber(0, 60_000), default: '200', commands: ['serve'], field: 'udpMaxWaitMs',
  help: 'a UDP query that waited longer than this in the receive queue is dropped unanswered; 0 = never',
  details: 'Under overload the 4 MB receive buffer holds seconds of queries whose clients have given up; dropping them early keeps the answers that are sent prompt (docs/limits.md). Needs the batched UDP addon; counted in sinkhole_udp_queries_dropped_total.',
});

export const limitsArea: Area = {
  title: 'Limits',
  options: [rateLimit, rateBurst, networkRateLimit, maxInflightPerClient, maxInflight, rateExempt, udpMaxWait],
};

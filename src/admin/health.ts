// GET /healthz: rules loaded and an upstream that answers. An upstream that answered within
// the last minute counts as healthy without a probe; otherwise the root NS is asked through
// the forwarder, and any well-formed answer counts (an authoritative-only upstream refuses
// the root but answers its zones). The reply comes within about a second whatever the
// upstreams do: a monitor must not hang on a dead upstream.
import type { Forwarder } from '../stages/forward/forwarder.js';
import type { PolicyStage } from '../stages/policy/stage.js';
import { buildQuery } from '../wire/build-query.js';
import { DROP, parseQuery, Query } from '../wire/query.js';

/** An upstream that answered within this long counts as healthy without a probe. */
const RECENT_ANSWER_MS = 60_000;
/** The longest /healthz waits for a probe. */
export const PROBE_WAIT_MS = 1000;

export interface HealthDeps {
  policyStage: PolicyStage;
  forwarder: Forwarder;
  /** The blocklist folder, for the message when nothing is loaded. */
  blocklists: string;
  /** The fleet (src/fleet/): its connection and policy version are part of the report. */
  fleet?: { health(): Record<string, unknown> } | null;
}

export interface HealthReport {
  status: number;
  body: Record<string, unknown>;
}

/** Asks the upstreams for the root NS records, through the forwarder, to see that one answers. */
function probeUpstreams(forwarder: Forwarder): Promise<{ ok: boolean; reason: string }> {
  const msg = buildQuery('.', 'NS');
  const q = parseQuery(msg);
  if (q === DROP || !(q instanceof Query)) return Promise.resolve({ ok: false, reason: 'internal: probe query did not parse' });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, reason: `no answer within ${PROBE_WAIT_MS} ms` }), PROBE_WAIT_MS);
    forwarder.forward(q, (r) => {
      clearTimeout(timer);
      resolve({ ok: r.reachable, reason: r.reachable ? '' : r.failure });
    });
  });
}

export async function health(deps: HealthDeps): Promise<HealthReport> {
  const rules = deps.policyStage.policy.rules;
  const { forwarder } = deps;
  const base = (): Record<string, unknown> => ({
    rules: rules.nameRuleCount + rules.ipRuleCount, files: rules.files.length,
    upstreams: forwarder.upstreams.map((u, i) => ({
      upstream: u.label, lastAnswerSecondsAgo: forwarder.lastAnswerAt[i] ? Math.round((Date.now() - forwarder.lastAnswerAt[i]!) / 1000) : null,
    })),
    ...(deps.fleet?.health() ?? {}),
  });
  if (rules.files.length === 0) return { status: 503, body: { status: 'fail', reason: `no blocklists loaded from ${deps.blocklists}`, ...base() } };
  if (!forwarder.lastAnswerAt.some((t) => Date.now() - t < RECENT_ANSWER_MS)) {
    const probe = await probeUpstreams(forwarder);
    if (!probe.ok) return { status: 503, body: { status: 'fail', reason: `no upstream answered: ${probe.reason}`, ...base() } };
  }
  return { status: 200, body: { status: 'ok', ...base() } };
}

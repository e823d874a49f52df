// --admin with --workers: the primary serves the admin API and asks every worker, over
// node:cluster's message channel, for its figures and adds them up (each worker counts the
// queries it answered); a reload goes to every worker, a check to one. Each worker answers
// from its own in-process backend, the same one a single process serves directly.
import cluster, { type Worker } from 'node:cluster';
import { historyHandlers } from '../observe/history/api.js';
import type { AdminBackend } from './backend.js';
import { mergeSnapshots, type AdminSnapshot } from './snapshot.js';
import type { FleetOrder } from '../fleet/node.js';
import { readFleetView } from '../fleet/view.js';
import type { FleetSupervisor } from '../fleet/workers.js';
import { MetricsSink } from '../pipeline/metrics.js';
import { ALL_GROUPS } from '../stages/policy/pause.js';

type Op = 'snapshot' | 'health' | 'reload' | 'check' | 'pause' | 'resume' | 'pauses' | 'update-lists';

interface AdminRequest {
  sinkhole: 'admin';
  id: number;
  op: Op;
  args?: unknown[];
}

interface AdminReply {
  sinkhole: 'admin-reply';
  id: number;
  result?: unknown;
  error?: string;
}

/** In a worker: answers the primary's admin requests from this worker's backend. */
export function answerAdminRequests(backend: AdminBackend): void {
  process.on('message', (msg: AdminRequest) => {
    if (msg?.sinkhole !== 'admin') return;
    const run: Promise<unknown> = msg.op === 'snapshot' ? backend.snapshot()
      : msg.op === 'health' ? backend.health()
        : msg.op === 'reload' ? backend.reload()
          : msg.op === 'check' ? backend.check(...(msg.args as [string, number, string | null, number | null]))
            : msg.op === 'pause' ? backend.pause(...(msg.args as [string | null, number | null]))
              : msg.op === 'resume' ? backend.resume(...(msg.args as [string | null]))
                : msg.op === 'pauses' ? backend.pauses()
                : backend.updateLists();
    run.then((result) => process.send?.({ sinkhole: 'admin-reply', id: msg.id, result } satisfies AdminReply),
      (err: Error) => process.send?.({ sinkhole: 'admin-reply', id: msg.id, error: err.message } satisfies AdminReply));
  });
}

/** Longer than a worker's health probe of the upstreams (the 4 s forward budget). */
const REPLY_TIMEOUT_MS = 6000;

/** In the primary: the admin backend made of every running worker. */
export function clusterBackend(stateDir: string, blocklists: string | null = null, fleet: FleetSupervisor | null = null): AdminBackend {
  // The primary reads the history database itself: it owns the writer.
  const { report, attempts } = historyHandlers(stateDir);
  let nextId = 1;
  const waiting = new Map<number, (reply: AdminReply) => void>();
  cluster.on('message', (_worker, msg: AdminReply) => {
    if (msg?.sinkhole === 'admin-reply') waiting.get(msg.id)?.(msg);
  });

  const ask = <T>(worker: Worker, op: Op, args?: AdminRequest['args']): Promise<T> => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`worker ${worker.id} did not answer the admin request in time`));
    }, REPLY_TIMEOUT_MS);
    waiting.set(id, (reply) => {
      clearTimeout(timer);
      waiting.delete(id);
      if (reply.error !== undefined) reject(new Error(`worker ${worker.id}: ${reply.error}`));
      else resolve(reply.result as T);
    });
    worker.send({ sinkhole: 'admin', id, op, args } satisfies AdminRequest);
  });
  const workers = (): Worker[] => {
    const running = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
    if (running.length === 0) throw new Error('no worker is running');
    return running;
  };
  const everyWorker = <T>(op: Op, args?: unknown[]): Promise<T[]> => Promise.all(workers().map((w) => ask<T>(w, op, args)));

  return {
    // Block, allow and bundles edit the folder here, then reload every worker.
    blocklists,
    snapshot: async () => {
      const merged = mergeSnapshots(await everyWorker<AdminSnapshot>('snapshot'));
      if (fleet === null) return merged;
      // The fleet's figures are this process's: it holds the node's Redis link.
      const sink = new MetricsSink();
      fleet.node.collect(sink);
      return { ...merged, families: [...merged.families, ...sink.families] };
    },
    health: async () => {
      let replies: { status: number; body: Record<string, unknown> }[];
      try {
        replies = await everyWorker('health');
      } catch (err) {
        return { status: 503, body: { status: 'fail', reason: (err as Error).message } };
      }
      // Healthy only when every worker is: a query may land on any of them.
      return replies.find((r) => r.status !== 200) ?? { status: 200, body: { ...replies[0]!.body, workers: replies.length, ...(fleet?.node.health() ?? {}) } };
    },
    reload: async () => {
      const replies = await everyWorker<Record<string, unknown>>('reload');
      // Each worker re-read the same config file: a failure anywhere is the answer's.
      const config = replies.find((r) => (r.config as { reloaded?: boolean } | undefined)?.reloaded === false)?.config ?? replies[0]!.config;
      return {
        reloaded: replies.every((r) => r.reloaded === true), rules: replies[0]!.rules, ms: Math.max(...replies.map((r) => Number(r.ms))), workers: replies.length,
        ...(config === undefined ? {} : { config }),
      };
    },
    check: (name, qtype, client, at = null) => ask(workers()[0]!, 'check', [name, qtype, client, at]),
    // Every worker keeps its own pause table (from the same state file) and its own lists.
    // In a fleet the node's pause is then published (primary) or passed on to the primary (replica), once.
    pause: async (group, forMs) => {
      const first = (await everyWorker<Record<string, unknown>>('pause', [group, forMs]))[0]!;
      fleet?.ordered({ op: 'pause', group: first.paused === 'all' ? ALL_GROUPS : String(first.paused), until: first.until === null ? null : Date.parse(String(first.until)) });
      return first;
    },
    resume: async (group) => {
      const first = (await everyWorker<Record<string, unknown>>('resume', [group]))[0]!;
      fleet?.ordered({ op: 'resume', group: group?.toLowerCase() ?? ALL_GROUPS });
      return first;
    },
    pauses: () => ask(workers()[0]!, 'pauses'),
    updateLists: async () => (await everyWorker<Record<string, unknown>>('update-lists'))[0]!,
    report,
    attempts,
    ...(fleet === null ? {} : { fleetView: () => readFleetView(fleet.node.link) }),
    ...(fleet?.node.role === 'replica' ? { fleetOrder: (o: FleetOrder) => fleet.node.order(o) } : {}),
  };
}

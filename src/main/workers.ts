// `--workers N`: N processes (node:cluster) answer on the same sockets, so one server can
// use several cores. On Node >= 22.12 each worker binds its own UDP socket with SO_REUSEPORT
// and the kernel spreads the queries; Node 20 has no SO_REUSEPORT for UDP, so there workers
// bind non-exclusively and the primary shares one socket per address with all of them
// (TCP listeners are always shared by the primary). Each worker holds its
// own rules and its own cache. The primary only supervises: it says ready when every
// worker is, passes SIGHUP on, and stops them all on SIGTERM/SIGINT.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../observe/log.js';

export const isWorker = cluster.isWorker;

/** Tells the primary this worker is serving (no-op outside a cluster). */
export function reportReady(): void {
  if (cluster.isWorker) process.send?.({ sinkhole: 'ready' });
}

/** `beforeExit`: what the primary itself must finish when every worker has stopped (the history writer). */
export function runPrimary(count: number, log: Logger, flush: () => void, onReady: () => void, beforeExit: () => Promise<void> = () => Promise.resolve()): void {
  let stopping = false;
  let ready = 0;
  let restarts = 0;
  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (msg: { sinkhole?: string }) => {
      if (msg?.sinkhole !== 'ready') return;
      ready++;
      if (ready === count) {
        log.info({ workers: count }, 'all workers ready');
        onReady();
      }
    });
    return worker;
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        void beforeExit().finally(() => {
          log.info('stopped');
          flush();
          process.exit(0);
        });
      }
      return;
    }
    // A worker that dies before everyone is ready cannot bind or load: stop with its error
    // (it printed it). One that dies later is replaced, unless that keeps happening.
    if (ready < count || ++restarts > 10) {
      log.error({ worker: worker.id, code, signal }, 'a worker stopped; stopping the server');
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      flush();
      process.exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1);
      return;
    }
    log.error({ worker: worker.id, code, signal }, 'a worker stopped; starting another');
    ready--;
    fork();
  });
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  for (let i = 0; i < count; i++) fork();
}

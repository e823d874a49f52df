// The history's threads (the writer, the report reader) run at the lowest CPU priority.
// On a busy core they share it with the thread answering DNS: a 20 ms commit or a 4 s report
// must wait for DNS, never the other way round (measured: with the writer at the same
// priority, W3 at 40,000 q/s on one core had p99 53 ms). When the DNS thread leaves the core
// idle, they run at full speed; when it never does, the writer's queue fills and the oldest
// raw rows are dropped and counted (the hourly counts are kept on the DNS thread).
//
// Two steps: nice 19 (Node's own os.setPriority, per thread), and where the batched-UDP addon
// is built the SCHED_IDLE class. Nice 19 alone is not enough on Linux's EEVDF scheduler: a
// thread that has the core keeps it until its slice ends, so the DNS thread, woken by a
// query, can wait behind the writer. An idle-class thread is preempted at once. Measured
// (W3 at 40,000 q/s on one core, docs/performance.md): a small gain, p99 7.6-15.9 ms with the
// writer at nice 19 and 5.8-14.9 ms in SCHED_IDLE, inside the noise of single runs.
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';
import { loadBatchUdp } from '../../net/batch-udp.js';

/**
 * Lowers the calling thread: nice 19, then SCHED_IDLE where the addon can set it. Linux gives
 * each thread its own id in /proc/thread-self, and setpriority() on that id touches that
 * thread alone; sched_setscheduler(0) in the addon is the calling thread too.
 * Returns null, or why it could not be reniced (another OS, a container that forbids it);
 * without the addon's call the thread stays at nice 19. Never throws.
 */
export function lowerThisThreadPriority(): string | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return 'no thread id in /proc/thread-self';
    setPriority(tid, constants.priority.PRIORITY_LOW);
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? 'unknown error';
  }
  loadBatchUdp().addon?.idleThread?.();
  return null;
}

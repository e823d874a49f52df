// The history's threads (the writer, the report reader) run at the lowest CPU priority.
// On a busy core they share it with the thread answering DNS: a 20 ms commit or a 4 s report
// must wait for DNS, never the other way round (measured: with the writer at the same
// priority, W3 at 40,000 q/s on one core had p99 53 ms). When the DNS thread leaves the core
// idle, they run at full speed; when it never does, the writer's queue fills and the oldest
// raw rows are dropped and counted (the hourly counts are kept on the DNS thread).
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';

/**
 * Lowers the calling thread to nice 19. Linux gives each thread its own id in
 * /proc/thread-self, and setpriority() on that id touches that thread alone.
 * Returns null, or why it could not (another OS, a container that forbids it): never throws.
 */
export function lowerThisThreadPriority(): string | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return 'no thread id in /proc/thread-self';
    setPriority(tid, constants.priority.PRIORITY_LOW);
    return null;
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? 'unknown error';
  }
}

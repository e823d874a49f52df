// pino on stdout, written asynchronously, flushed on shutdown, and the blocked-query log
// that folds repeats so that a client hammering a blocked name cannot flood the log.
import pino from 'pino';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogOutput {
  log: Logger;
  /** Writes out whatever is buffered (on shutdown). */
  flush(): void;
  /** Re-opens the destination (SIGHUP, for logrotate when logging to a file). */
  reopen(): void;
}

export function createLogger(level: LogLevel, file?: string): LogOutput {
  const destination = pino.destination({ dest: file ?? 1, sync: false, minLength: 0, mkdir: file !== undefined });
  const log = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return {
    log,
    flush: () => {
      try {
        destination.flushSync();
      } catch {
        // Nothing buffered, or stdout already gone: nothing left to save.
      }
    },
    reopen: () => {
      if (file !== undefined) destination.reopen();
    },
  };
}

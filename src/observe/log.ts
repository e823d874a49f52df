// pino on stdout or a file, written asynchronously, flushed on shutdown (within a bound); a
// log that cannot be written or reopened is told in one line and never stops the server.
import fs, { closeSync, openSync } from 'node:fs';
import pino from 'pino';
import { prettyStream } from './pretty.js';

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

/** Told (one line) when a log file cannot be written or reopened; the server goes on. */
export type LogProblem = (message: string, fields: { file: string; code: string }) => void;

/** Without a logger to tell: one plain line on stderr. */
const toStderr: LogProblem = (message) => {
  try {
    process.stderr.write(`sinkhole: ${message}\n`);
  } catch {
    // stderr gone too: nobody left to tell.
  }
};

/** One line per minute at most about failed writes, however many fail (a full disk fails them all); every failed reopen is told. */
const PROBLEM_INTERVAL_MS = 60_000;

/**
 * `file` undefined: stdout, as JSON lines, except on a terminal: there readable lines
 * (pretty.ts), coloured unless NO_COLOR is set; SINKHOLE_LOG_FORMAT=json or =pretty overrides
 * that choice. A file always gets JSON. A log is never the reason the server stops: a write or reopen that
 * fails is told to `onProblem` (at most once a minute) and logging goes on where it can: after
 * a failed reopen, into the file that was open before.
 */
export function createLogger(level: LogLevel, file?: string, onProblem: LogProblem = toStderr): LogOutput {
  const flushing = { giveUp: false };
  const destination = pino.destination({
    dest: file ?? 1, sync: false, minLength: 0, mkdir: false,
    // EAGAIN (a slow reader of stdout) is waited out, except by a flush past its time.
    retryEAGAIN: () => !flushing.giveUp,
  });
  boundFlushSync(destination, flushing);
  const format = process.env.SINKHOLE_LOG_FORMAT;
  const pretty = file === undefined && (format === 'pretty' || (format !== 'json' && process.stdout.isTTY === true));
  const stream = pretty ? prettyStream(destination, process.stdout.isTTY === true && (process.env.NO_COLOR ?? '') === '') : destination;
  const log = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, stream);
  const where = file ?? 'stdout';
  let lastProblem = 0;
  let unreported = 0;
  const problem = (what: string, err: NodeJS.ErrnoException, fix: string, always = false): void => {
    const now = Date.now();
    if (!always && now - lastProblem < PROBLEM_INTERVAL_MS) {
      unreported++;
      return;
    }
    lastProblem = now;
    const more = unreported > 0 ? ` (and ${unreported} more failures in the last minute)` : '';
    unreported = 0;
    onProblem(`${what} ${where}: ${err.code ?? err.message}${more}; ${fix}`, { file: where, code: err.code ?? '' });
  };
  // Without a listener an 'error' event would end the process. EPIPE (stdout's reader went
  // away, as with `| head`) is handled by pino itself, which then stops writing.
  destination.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return;
    problem('cannot write the log', err, 'check the disk and the file\'s permissions; lines are lost until it is fixed');
  });
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
      if (file === undefined) return;
      // Opened here first, so that a failure (logrotate moved the file into a folder we may not
      // write) is seen at once, and the destination goes on writing to the file it has.
      try {
        closeSync(openSync(file, 'a'));
        destination.reopen();
      } catch (err) {
        problem('cannot reopen the log', err as NodeJS.ErrnoException,
          'still writing to the file it had open; make the folder writable by the server, then send SIGHUP again', true);
      }
    },
  };
}

/** The longest a synchronous flush (shutdown, process exit) may take. */
const FLUSH_MS = 1000;

/**
 * sonic-boom's flushSync retries a failing write for ever: with stdout's reader gone (EPIPE,
 * `sinkhole serve | head`) or a full disk (ENOSPC), process.exit() — whose exit hook, from
 * pino, calls flushSync — never returned. Here a flush gives up at the first write error, and
 * after FLUSH_MS of EAGAIN, and never throws: the lines are lost, the process ends. The instance's flushSync is
 * replaced, so pino's exit hook gets the bounded one too. During the call, fs.writeSync reports
 * every failure as EAGAIN: that is the one error sonic-boom lets `retryEAGAIN` turn into a throw.
 */
function boundFlushSync(destination: pino.DestinationStream & { flushSync(): void }, flushing: { giveUp: boolean }): void {
  const original = destination.flushSync.bind(destination);
  destination.flushSync = (): void => {
    const writeSync = fs.writeSync;
    const deadline = Date.now() + FLUSH_MS;
    fs.writeSync = ((...args: Parameters<typeof fs.writeSync>): number => {
      try {
        return writeSync(...args);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'EAGAIN' && code !== 'EBUSY') || Date.now() >= deadline) {
          flushing.giveUp = true;
          throw Object.assign(new Error(`log flush abandoned: ${code ?? (err as Error).message}`), { code: 'EAGAIN' });
        }
        throw err;
      }
    }) as typeof fs.writeSync;
    try {
      original();
    } catch {
      // Given up, or nothing to flush into (not open yet): the exit hook must not throw.
    } finally {
      fs.writeSync = writeSync;
      flushing.giveUp = false;
    }
  };
}

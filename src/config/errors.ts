// Error classes a person sees, each with its own exit status, so scripts and systemd can
// tell "fix your command line or config" from "could not start" from "nothing answered".
// The message is one line: what, where (file:line, --flag, address:port), and the fix.

/** Exit 2: the command line, a config file or a blocklist folder is wrong. */
export class ConfigError extends Error {
  readonly exitCode: number = 2;
}

/** Exit 3: the command was right, but what it needed did not answer (the admin API, a server that never became ready). */
export class UnreachableError extends Error {
  readonly exitCode: number = 3;
}

/** The exit statuses, for `--help`, the manual page and the README (one source). */
export const EXIT_STATUS: readonly { code: number; meaning: string }[] = [
  { code: 0, meaning: 'success (check: the name is answered normally)' },
  { code: 1, meaning: 'the server could not start (a port in use, no permission), or an unexpected error, printed with its stack; check: the name is blocked or the client is refused' },
  { code: 2, meaning: 'a bad command line, config file or blocklist folder' },
  { code: 3, meaning: 'something the command needs did not answer: the admin API (stats), the server within --timeout (wait-ready)' },
];

// An area: a group of options with a heading (in --help, the manual pages and the README)
// and, optionally, the checks that involve several of its options.
import type { Config } from '../config.js';
import type { Option } from '../option.js';
import type { Settings } from '../settings.js';

export interface BuildContext {
  /** False for commands that only read the rules (check, list): no upstream is looked for. */
  needUpstreams: boolean;
}

export interface Area {
  title: string;
  options: readonly Option[];
  /** Runs once every field is filled: derived fields and checks across options. Throws ConfigError. */
  finish?(config: Config, settings: Settings, ctx: BuildContext): void;
}

// Where an installed sinkhole finds its config file. A copy run from a source checkout
// (npm start, npx sinkhole, the tests) reads none unless told, so development never picks
// up a machine's production settings.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SYSTEM_CONFIG = '/etc/sinkhole/sinkhole.conf';

/** The folder holding dist/ (or src/) and package.json. */
export const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The root an installed copy lives under: '' for /opt/sinkhole (or /usr/lib/sinkhole, or an
 * npm global install), '/x' for /x/opt/sinkhole (a --prefix install); null for anything else.
 */
export function installRoot(appDir: string = APP_DIR): string | null {
  const m = /^(.*)\/(?:opt|usr\/lib|usr\/local\/lib|usr\/lib\/node_modules|usr\/local\/lib\/node_modules)\/sinkhole$/.exec(appDir);
  return m ? m[1]! : null;
}

export interface ConfigChoice {
  path: string | null;
  /** Why this one, for --help. */
  why: string;
}

/** The config file read when --config is not given: $SINKHOLE_CONFIG, else the installed copy's, when it exists. */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env, appDir: string = APP_DIR): ConfigChoice {
  const fromEnv = env.SINKHOLE_CONFIG;
  if (fromEnv !== undefined) return fromEnv === '' ? { path: null, why: 'SINKHOLE_CONFIG is set and empty' } : { path: fromEnv, why: 'from SINKHOLE_CONFIG' };
  const root = installRoot(appDir);
  if (root === null) return { path: null, why: `run from a source checkout, which reads none unless told; an installed copy reads ${SYSTEM_CONFIG}` };
  const path = root + SYSTEM_CONFIG;
  return existsSync(path) ? { path, why: 'the installed default' } : { path: null, why: `${path} does not exist` };
}

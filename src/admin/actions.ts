// The admin API's changes to the rules: block or allow a name (local.txt, local.allow.txt),
// enable or disable a bundle, and the bundle list the console shows. Each edits files in the
// blocklist folder, then reloads, so that the change is in force when the answer comes.
import type { RouteResult } from './routes.js';
import type { AdminBackend } from './backend.js';
import { addToLocalList, listName } from './list-edit.js';
import { disableBundle, enableBundle, listBundles } from '../stages/policy/bundles.js';

function folder(b: AdminBackend): string | { error: RouteResult } {
  if (b.blocklists === null) return { error: { status: 501, body: { error: 'this admin server does not know the blocklist folder' } } };
  return b.blocklists;
}

export async function listAction(kind: 'block' | 'allow', url: URL, b: AdminBackend): Promise<RouteResult> {
  const dir = folder(b);
  if (typeof dir !== 'string') return dir.error;
  const name = listName(url.searchParams.get('name'));
  if (typeof name !== 'string') return { status: 400, body: name };
  if (b.fleetOrder) return fleetResult({ [kind === 'block' ? 'blocked' : 'allowed']: name }, await b.fleetOrder({ cmd: kind, name }));
  let edit;
  try {
    edit = addToLocalList(dir, kind, name);
  } catch (err) {
    return { status: 500, body: { error: (err as Error).message } };
  }
  const reload = await b.reload();
  return { status: 200, body: { [kind === 'block' ? 'blocked' : 'allowed']: name, ...edit, reload } };
}

export async function bundleAction(kind: 'enable' | 'disable', url: URL, b: AdminBackend): Promise<RouteResult> {
  const dir = folder(b);
  if (typeof dir !== 'string') return dir.error;
  const bundle = url.searchParams.get('bundle');
  if (bundle === null || bundle === '') return { status: 400, body: { error: 'give bundle=NAME (see GET /api/bundles)' } };
  if (b.fleetOrder) {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(bundle)) return { status: 400, body: { error: `"${bundle}" is not a bundle name (see GET /api/bundles)` } };
    return fleetResult({ bundle }, await b.fleetOrder({ cmd: kind, bundle: bundle.replace(/\.txt$/, '') }));
  }
  let done: string;
  try {
    done = kind === 'enable' ? enableBundle(dir, bundle) : disableBundle(dir, bundle);
  } catch (err) {
    const message = (err as Error).message;
    return { status: message.startsWith('no bundle') ? 404 : 400, body: { error: message } };
  }
  const reload = await b.reload();
  return { status: 200, body: { bundle, done, reload } };
}

export function bundleList(b: AdminBackend): Promise<RouteResult> {
  const dir = folder(b);
  if (typeof dir !== 'string') return Promise.resolve(dir.error);
  try {
    return Promise.resolve({ status: 200, body: { bundles: listBundles(dir).map((x) => ({ name: x.name, enabled: x.enabled, rules: x.rules, description: x.description })) } });
  } catch (err) {
    return Promise.resolve({ status: 500, body: { error: (err as Error).message } });
  }
}

/** A fleet replica's answer: the primary carries the change out; 202 when its new version has not arrived within 3 s. */
function fleetResult(what: Record<string, unknown>, r: Record<string, unknown>): RouteResult {
  if ('error' in r) return { status: 503, body: { ...what, error: r.error } };
  return { status: r.applied === true ? 200 : 202, body: { ...what, done: `ordered on the fleet's primary ${String(r.sentTo)}`, ...r } };
}

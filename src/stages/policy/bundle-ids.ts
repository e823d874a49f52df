// Bundle names -> small integers, for the whole process. A rule set built at one moment and
// a group policy compiled at another must agree on which index means which bundle, so the
// index is interned here once and never reused; the count is the number of distinct bundle
// names the process has seen (a few dozen, a few hundred with a service catalogue).
const ids = new Map<string, number>();
const names: string[] = [];

/** The index of bundle `name` (case-insensitive), given a new one the first time. */
export function bundleId(name: string): number {
  const key = name.toLowerCase();
  let id = ids.get(key);
  if (id === undefined) {
    id = names.length;
    names.push(key);
    ids.set(key, id);
  }
  return id;
}

/** The index of `name` if any rule set or policy has used it, else -1. */
export function knownBundleId(name: string): number {
  return ids.get(name.toLowerCase()) ?? -1;
}

export function bundleCount(): number {
  return names.length;
}

export function bundleNameOf(id: number): string {
  return names[id] ?? `#${id}`;
}

// Every key and channel the fleet uses in Redis, in one place (docs/fleet.md lists them).
// State lives in keys; pub/sub only says "look again", so a node that missed a notice
// catches up from the keys.
export const PREFIX = 'sinkhole:';

export const KEYS = {
  /** The primary's lease: the primary's node name, with an expiry it keeps renewing. */
  lease: `${PREFIX}lease`,
  /** The number of the latest policy snapshot (a counter). */
  policySeq: `${PREFIX}policy:seq`,
  /** The version in force, "VERSION CHECKSUM": points at a manifest. Written last, after the files and the manifest. */
  policyCurrent: `${PREFIX}policy:current`,
  /** One snapshot's manifest (JSON: version, path -> SHA-256, checksum). */
  manifest: (version: number): string => `${PREFIX}policy:manifest:${version}`,
  /** A file's content, by the SHA-256 of the content: an append sends only the changed file. */
  blob: (sha256: string): string => `${PREFIX}blob:${sha256}`,
  /** A segment of the shared cache: one flush's answers of one lifetime class, as a batch (shared-cache.ts). */
  cacheSegment: (writtenAtMs: number, node: string, seq: number): string => `${PREFIX}cache:seg:${writtenAtMs}:${seq}:${node}`,
  cacheSegmentPattern: `${PREFIX}cache:seg:*`,
  /** Heartbeats: node name -> JSON. */
  nodes: `${PREFIX}nodes`,
  /** One hour's counters (HINCRBY): field `site|SITE|queries`, `node|NODE|blocked`, `client|SITE|IP|queries`, `bundle|SITE|NAME|blocked`. */
  hour: (hourStart: string): string => `${PREFIX}hour:${hourStart}`,
};

export const CHANNELS = {
  /** A new policy version is in force (message: the version). */
  policy: `${PREFIX}policy`,
  /** A batch of answers one node wrote to the shared cache, for the others' memory (binary, see shared-cache.ts). */
  cache: `${PREFIX}cache`,
  /** Commands to the primary (JSON: { cmd: 'reload', from }). */
  command: `${PREFIX}command`,
};

/** The hour a time falls in, as the key suffix: 2026-12-01T13. */
export function hourOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13);
}

// Policy sharing. The primary publishes its policy folder as a snapshot (snapshot.ts):
// files first (only those Redis does not have), then the manifest, then the pointer to it,
// then a notice. A replica reads the pointer on every notice, on every reconnection and
// every few seconds (the notice is only a hint), fetches the manifest and the files it does
// not have, checks every hash, and only then writes the files into its state folder and
// reloads. Anything wrong and the snapshot is rejected whole: the replica keeps what it has.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from '../observe/log.js';
import { CHANNELS, KEYS } from './keys.js';
import type { RedisLink } from './link.js';
import { filesChecksum, localPath, manifestProblem, readPolicySources, sha256, type Manifest, type PolicySources } from './snapshot.js';

/** Snapshots (manifests and files) are kept this long after they were last published. */
const KEEP_SECONDS = 30 * 86400;

/** Runs `job` one at a time; a call during a run asks for one more run after it. */
class Serial {
  private running: Promise<void> | null = null;
  private again = false;
  constructor(private readonly job: () => Promise<void>) {}
  run(): Promise<void> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.job();
      } while (this.again);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }
}

export class PolicyPublisher {
  /** The manifest in force in the fleet, as this primary last saw or wrote it. */
  current: Manifest | null = null;
  published = 0;
  private force = false;
  private readonly serial = new Serial(() => this.publishOnce());

  /** `sources` is asked at every publication: the folder, and once the server runs, its subscriptions and pause file. */
  constructor(private readonly link: RedisLink, private readonly sources: () => PolicySources, private readonly node: string, private readonly log: Logger) {}

  /**
   * Publishes the policy if it differs from the version in force. With `notify` (a reload a
   * person ordered) the notice says "reload", so every replica reloads even when nothing changed.
   */
  publish(notify = false): Promise<void> {
    if (notify) this.force = true;
    return this.serial.run();
  }

  private async publishOnce(): Promise<void> {
    if (!this.link.connected) return;
    const notify = this.force;
    this.force = false;
    try {
      const files = await readPolicySources(this.sources());
      const map: Record<string, string> = {};
      for (const f of files) map[f.path] = f.hash;
      const checksum = filesChecksum(map);
      const inForce = await this.readCurrent();
      if (inForce !== null && inForce.checksum === checksum) {
        this.current = inForce;
        if (notify) await this.link.send(['PUBLISH', CHANNELS.policy, `${inForce.version} reload`]);
        return;
      }
      // Files Redis lacks are sent; the others get their expiry pushed back.
      const have = await Promise.all(files.map((f) => this.link.send<number>(['EXPIRE', KEYS.blob(f.hash), String(KEEP_SECONDS)])));
      await Promise.all(files.filter((_, i) => have[i] !== 1).map((f) => this.link.send(['SET', KEYS.blob(f.hash), f.content, 'EX', String(KEEP_SECONDS)])));
      // Redis emptied (restarted without persistence): numbers go on from the last one this primary knows.
      if (this.current !== null) await this.link.send(['SET', KEYS.policySeq, String(this.current.version), 'NX']);
      const version = await this.link.send<number>(['INCR', KEYS.policySeq]);
      const manifest: Manifest = { version, node: this.node, at: new Date().toISOString(), files: map, checksum };
      await this.link.send(['SET', KEYS.manifest(version), JSON.stringify(manifest), 'EX', String(KEEP_SECONDS)]);
      await this.link.send(['SET', KEYS.policyCurrent, pointer(manifest)]);
      await this.link.send(['PUBLISH', CHANNELS.policy, notify ? `${version} reload` : String(version)]);
      this.current = manifest;
      this.published++;
      this.log.info({ version, files: files.length, sent: have.filter((h) => h !== 1).length }, `published policy version ${version} to the fleet`);
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, 'could not publish the policy to the fleet; will retry when Redis is back');
    }
  }

  private async readCurrent(): Promise<Manifest | null> {
    const p = parsePointer(await this.link.send<string | null>(['GET', KEYS.policyCurrent]));
    if (p === null) return null;
    const text = await this.link.send<string | null>(['GET', KEYS.manifest(p.version)]);
    if (text === null) return null;
    try {
      const m = JSON.parse(text) as unknown;
      return manifestProblem(m, p.version) === null ? (m as Manifest) : null;
    } catch {
      return null;
    }
  }
}

export class PolicyFollower {
  /** The snapshot this replica runs (also on disk: applied.json). */
  applied: Manifest | null = null;
  /** STATE_DIR/fleet/blocklists: the policy folder a replica loads (with available/). */
  readonly folder: string;
  /** STATE_DIR/fleet/lists: the primary's list-url copies. */
  readonly listsFolder: string;
  /** STATE_DIR/fleet/pause.json: the primary's pauses (absent: none). */
  readonly pauseFile: string;
  private readonly root: string;
  private readonly appliedFile: string;
  private readonly serial = new Serial(() => this.checkOnce());
  private lastRejected = -1;
  rejected = 0;

  /** `apply` reloads the policy from `folder` once the files of a new version are there. */
  constructor(private readonly link: RedisLink, stateDir: string, private readonly log: Logger,
    private readonly apply: (manifest: Manifest) => Promise<void>) {
    this.root = join(stateDir, 'fleet');
    this.folder = join(this.root, 'blocklists');
    this.listsFolder = join(this.root, 'lists');
    this.pauseFile = join(this.root, 'pause.json');
    this.appliedFile = join(this.root, 'applied.json');
  }

  /** Reads what was applied before (a restart). True when there is a copy to serve. */
  async load(): Promise<boolean> {
    await mkdir(join(this.folder, 'available'), { recursive: true });
    await mkdir(this.listsFolder, { recursive: true });
    try {
      const m = JSON.parse(await readFile(this.appliedFile, 'utf8')) as Manifest;
      if (manifestProblem(m, m.version) === null) this.applied = m;
    } catch {
      this.applied = null;
    }
    return this.applied !== null;
  }

  /** Fills the state folder with the node's own folder, until a snapshot arrives (a first start with Redis away). */
  async seed(ownFolder: string): Promise<void> {
    const files = await readPolicySources({ blocklists: ownFolder }).catch(() => []);
    for (const old of await this.managedFiles()) await rm(join(this.root, old), { force: true });
    for (const f of files) await this.write(f.path, f.content);
  }

  check(): Promise<void> {
    return this.serial.run();
  }

  private async checkOnce(): Promise<void> {
    if (!this.link.connected) return;
    let version: number;
    let manifest: Manifest;
    const contents = new Map<string, Buffer>();
    try {
      const p = parsePointer(await this.link.send<string | null>(['GET', KEYS.policyCurrent]));
      if (p === null) return;
      version = p.version;
      // One GET per check while nothing changed: the pointer carries the version and the checksum.
      if (this.applied !== null && this.applied.version === version && this.applied.checksum === p.checksum) return;
      const text = await this.link.send<string | null>(['GET', KEYS.manifest(version)]);
      if (text === null) return this.reject(version, 'its manifest is missing');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return this.reject(version, 'its manifest is not JSON');
      }
      const problem = manifestProblem(parsed, version);
      if (problem !== null) return this.reject(version, `its manifest ${problem}`);
      manifest = parsed as Manifest;
      if (this.applied !== null && this.applied.checksum === manifest.checksum) {
        // Same files under a new number (Redis was emptied and the primary published again).
        this.applied = manifest;
        await writeAtomic(this.appliedFile, Buffer.from(JSON.stringify(manifest)));
        return;
      }
      const wanted = Object.entries(manifest.files).filter(([path, hash]) => this.applied?.files[path] !== hash);
      const blobs = await Promise.all(wanted.map(([, hash]) => this.link.sendForBuffers<Buffer | null>(['GET', KEYS.blob(hash)])));
      for (let i = 0; i < wanted.length; i++) {
        const [path, hash] = wanted[i]!;
        const blob = blobs[i];
        if (!Buffer.isBuffer(blob)) return this.reject(version, `${path} is missing`);
        if (sha256(blob) !== hash) return this.reject(version, `${path} does not match its hash`);
        contents.set(path, blob);
      }
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, 'could not read the fleet policy; keeping the current one, will retry');
      return;
    }
    // Everything checked: write the files (each one whole: temp file, then rename), drop the others.
    for (const [path, content] of contents) await this.write(path, content);
    const keep = new Set(Object.keys(manifest.files).map(localPath));
    for (const name of await this.managedFiles()) if (!keep.has(name)) await rm(join(this.root, name), { force: true });
    await writeAtomic(this.appliedFile, Buffer.from(JSON.stringify(manifest)));
    this.applied = manifest;
    await this.apply(manifest);
  }

  private reject(version: number, reason: string): void {
    this.rejected++;
    if (this.lastRejected !== version) {
      this.log.error({ version, reason }, `fleet policy version ${version} rejected: ${reason}; keeping version ${this.applied?.version ?? 'none'}`);
    }
    this.lastRejected = version;
  }

  private async write(path: string, content: Buffer): Promise<void> {
    const file = join(this.root, localPath(path));
    await mkdir(dirname(file), { recursive: true });
    await writeAtomic(file, content);
  }

  /** The files this follower wrote, relative to STATE_DIR/fleet/ (what a new snapshot may remove). */
  private async managedFiles(): Promise<string[]> {
    const txt = async (rel: string): Promise<string[]> =>
      (await readdir(join(this.root, rel)).catch(() => [] as string[])).filter((n) => n.endsWith('.txt') && !n.startsWith('.')).map((n) => `${rel}/${n}`);
    const catalogues = (await readdir(this.listsFolder).catch(() => [] as string[])).filter((n) => n.endsWith('.catalogue'));
    const out = [...(await txt('blocklists')), ...(await txt('blocklists/available')), ...(await txt('lists'))];
    for (const c of catalogues) out.push(...(await txt(`lists/${c}`)));
    if (existsSync(this.pauseFile)) out.push('pause.json');
    return out;
  }
}

/** The pointer's value: "VERSION CHECKSUM". */
function pointer(m: Manifest): string {
  return `${m.version} ${m.checksum}`;
}

function parsePointer(value: string | null): { version: number; checksum: string } | null {
  const m = value === null ? null : /^(\d{1,15})(?: ([0-9a-f]{64}))?$/.exec(value);
  return m === null ? null : { version: Number(m[1]), checksum: m[2] ?? '' };
}

/** Writes a whole file or nothing: a temporary name the loader ignores (a leading dot), then a rename. */
async function writeAtomic(path: string, content: Buffer): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf('/'));
  const tmp = join(dir, `.${path.slice(dir.length + 1)}.${process.pid}.tmp`);
  await writeFile(tmp, content);
  await rename(tmp, path);
}

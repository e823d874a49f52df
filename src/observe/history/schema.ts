// The history database: its tables, and opening it as the one writer or as a reader.
// Names, clients and labels are stored once and referenced by integer id (as Pi-hole
// does), so a raw row is a handful of small integers.
import Database from 'better-sqlite3';
import { OUTCOMES, type Outcome } from '../event.js';

export type Db = Database.Database;

export const DB_FILE = 'history.sqlite';
/**
 * 2: `queries.count` and `queries.span` (identical attempts in one second folded into one row).
 * 3: no indexes `queries_client`, `queries_domain` (the search reads the roll-ups instead);
 *    roll-ups keep `first` relative to their hour or day and `span` instead of `last`.
 * 4: `domains` found by `hash` (qnameHash) instead of a UNIQUE index over the name's text.
 */
export const SCHEMA_VERSION = 4;

/** Raw row ids are the time in ms times this plus a sequence number (see `queries.id`). */
export const ID_PER_MS = 1000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Verdict numbers stored in `queries.verdict` and `hourly.verdict`: the index in OUTCOMES. */
export function verdictCode(outcome: Outcome): number {
  return OUTCOMES.indexOf(outcome);
}
export const BLOCKED = verdictCode('blocked');
/**
 * A blocked answer no rule gave: the DNS-over-HTTPS canary (browsers, and the probe of
 * `sinkhole wait-ready`). Stored apart from blocked (verdict `canary`), so it is no one's
 * attempt in reports and searches.
 */
export const CANARY = OUTCOMES.length;
/** The names of the verdict numbers (table `verdicts`). */
export const VERDICT_NAMES: readonly string[] = [...OUTCOMES, 'canary'];

/**
 * The roll-ups. first = ms of the first attempt from the start of the row's hour (or day),
 * span = ms from the first to the last (schema 3; before, both were ms since 1970): 3 and
 * mostly 0 bytes instead of 6 and 6, on ~0.7 roll-up rows per attempt when attempts are
 * spread thin (rollupTimes gives the SQL for the times in ms).
 */
const ROLLUP_TABLES = `
-- hour = floor(ms / 3600000).
CREATE TABLE IF NOT EXISTS hourly (
  hour INTEGER NOT NULL,
  client INTEGER NOT NULL,
  grp INTEGER NOT NULL,
  bundle INTEGER NOT NULL,
  verdict INTEGER NOT NULL,
  count INTEGER NOT NULL,
  first INTEGER NOT NULL,
  span INTEGER NOT NULL,
  PRIMARY KEY (hour, client, grp, bundle, verdict)
) WITHOUT ROWID;
-- The same per UTC day (day = floor(ms / 86400000)): a 90-day report by client, bundle or
-- group reads ~90 rows per (client, bundle) instead of ~2,000 hourly ones.
CREATE TABLE IF NOT EXISTS daily (
  day INTEGER NOT NULL,
  client INTEGER NOT NULL,
  grp INTEGER NOT NULL,
  bundle INTEGER NOT NULL,
  verdict INTEGER NOT NULL,
  count INTEGER NOT NULL,
  first INTEGER NOT NULL,
  span INTEGER NOT NULL,
  PRIMARY KEY (day, client, grp, bundle, verdict)
) WITHOUT ROWID;
-- Blocked raw rows per (UTC day, name, bundle), for reports by domain without a client.
CREATE TABLE IF NOT EXISTS daily_domains (
  day INTEGER NOT NULL,
  domain INTEGER NOT NULL,
  bundle INTEGER NOT NULL,
  count INTEGER NOT NULL,
  first INTEGER NOT NULL,
  span INTEGER NOT NULL,
  PRIMARY KEY (day, domain, bundle)
) WITHOUT ROWID;
`;

/**
 * Names, found by the writer through `hash` (qnameHash of qname; names with the same hash
 * are told apart by their text). Schema 3 had UNIQUE (qname): an index entry as long as the
 * name, put at a random place for every new name; every blocked attempt of the benchmark's
 * W1 and W3 (random subdomains) is a new name, and that index was the writer's costliest
 * part (docs/history.md, "The writer with names that are all new"). An 8-byte hash makes an index a third the size, and the
 * readers never looked names up by text (the search scans for a part of the name).
 */
const DOMAINS_TABLE = `CREATE TABLE IF NOT EXISTS domains (id INTEGER PRIMARY KEY, qname TEXT NOT NULL, hash INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS domains_hash ON domains (hash);`;

/**
 * A 52-bit hash of a name's text (two 32-bit FNV-1a style halves with different primes), an
 * exact integer in a JS number and in SQLite. Stored: it must never change. Collisions cost
 * nothing but a second row read (the writer compares the text).
 */
export function qnameHash(qname: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < qname.length; i++) {
    const c = qname.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return (a >>> 0) * 0x100000 + (b >>> 12);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verdicts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
-- One row per (address, name) pair seen: a client renamed by DHCP gets a second row.
CREATE TABLE IF NOT EXISTS clients (id INTEGER PRIMARY KEY, address TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', UNIQUE (address, name));
${DOMAINS_TABLE}
-- Bundles, rule files, groups, node names and upstreams: few distinct texts.
CREATE TABLE IF NOT EXISTS labels (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
-- id = time in ms * 1000 + a sequence number: rows are in time order by their key, so a time
-- range is a range of the primary key and no separate time index is needed.
CREATE TABLE IF NOT EXISTS queries (
  id INTEGER PRIMARY KEY,
  client INTEGER NOT NULL,
  domain INTEGER NOT NULL,
  qtype INTEGER NOT NULL,
  verdict INTEGER NOT NULL,
  grp INTEGER NOT NULL,
  bundle INTEGER,
  rule_file INTEGER,
  rule_line INTEGER,
  node INTEGER NOT NULL,
  rcode INTEGER,
  upstream INTEGER,
  latency_ms REAL,
  -- Identical blocked attempts (client, qname, qtype, group, bundle, rule, node) in the same
  -- second of one batch are one row: count = how many, span = ms from the first (the id's
  -- time) to the last. A row of one attempt stores 1 and 0 in no bytes but their headers.
  count INTEGER NOT NULL DEFAULT 1,
  span INTEGER NOT NULL DEFAULT 0
);
-- No index over the raw rows: the search finds a client's or a name's rows through the
-- daily and hourly roll-ups (search.ts, walkSpans); indexes per client and per name cost 35
-- bytes per attempt, a third of the database (schema 2 had them, schema 3 drops them).
${ROLLUP_TABLES}
-- For people with the sqlite3 shell: the raw rows in words.
CREATE VIEW IF NOT EXISTS attempts AS
  SELECT strftime('%Y-%m-%dT%H:%M:%fZ', q.id / 1000 / 1000.0, 'unixepoch') AS time, c.address AS client, c.name AS client_name,
         g.text AS grp, d.qname, q.qtype, q.count, v.name AS verdict, b.text AS bundle, f.text || ':' || q.rule_line AS rule,
         n.text AS node, q.rcode, u.text AS upstream, q.latency_ms
  FROM queries q JOIN clients c ON c.id = q.client JOIN domains d ON d.id = q.domain JOIN verdicts v ON v.id = q.verdict
  JOIN labels g ON g.id = q.grp JOIN labels n ON n.id = q.node
  LEFT JOIN labels b ON b.id = q.bundle LEFT JOIN labels f ON f.id = q.rule_file LEFT JOIN labels u ON u.id = q.upstream;
`;

/**
 * Opens (creating if needed) the database as its one writer: WAL, so readers (reports)
 * never block the writer; synchronous=NORMAL, so a commit does not wait for the disk (a
 * power cut may lose the last commits, never corrupt the file); incremental auto-vacuum, so
 * space freed by retention can be given back in small steps.
 */
export function openWriter(path: string): Db {
  const db = new Database(path);
  try {
    db.pragma('busy_timeout = 5000');
    if (db.pragma('auto_vacuum', { simple: true }) !== 2 && !hasTables(db)) db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // After a checkpoint the log is cut back to 4 MB: a burst does not leave a big file behind.
    db.pragma('journal_size_limit = 4194304');
    migrate(db);
    db.exec(SCHEMA);
    const insert = db.prepare('INSERT OR IGNORE INTO verdicts (id, name) VALUES (?, ?)');
    VERDICT_NAMES.forEach((o, i) => insert.run(i, o));
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT DO UPDATE SET value = excluded.value").run(String(SCHEMA_VERSION));
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Brings a database written by an older server up to this schema before SCHEMA runs: version
 * 1 had no `count` and `span` (ADD COLUMN with a constant default rewrites nothing: old rows
 * read as 1 and 0), and its `attempts` view had no count; versions 1 and 2 had the indexes
 * `queries_client` and `queries_domain`, and roll-ups with `first` and `last` in ms since 1970.
 */
function migrate(db: Db): void {
  if (!hasTables(db) || db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queries'").get() === undefined) return;
  db.transaction(() => {
    if (!hasFoldedRows(db)) {
      db.exec('ALTER TABLE queries ADD COLUMN count INTEGER NOT NULL DEFAULT 1');
      db.exec('ALTER TABLE queries ADD COLUMN span INTEGER NOT NULL DEFAULT 0');
      db.exec('DROP VIEW IF EXISTS attempts');
    }
    // Schema 3: the search indexes go (dropping them is quick; their pages become free pages,
    // reused by new rows and given back to the file system by retention's incremental vacuum).
    db.exec('DROP INDEX IF EXISTS queries_client');
    db.exec('DROP INDEX IF EXISTS queries_domain');
    // Schema 4: names found by hash. The table is copied (SQLite cannot drop a UNIQUE
    // constraint); ids stay, so no other table changes. The view names `domains`: it goes
    // first and SCHEMA makes it again.
    if (tableExists(db, 'domains') && !hasColumn(db, 'domains', 'hash')) {
      db.function('qname_hash', { deterministic: true }, (qname: unknown) => qnameHash(String(qname)));
      db.exec('DROP VIEW IF EXISTS attempts; ALTER TABLE domains RENAME TO domains_v3;');
      db.exec(DOMAINS_TABLE);
      db.exec('INSERT INTO domains (id, qname, hash) SELECT id, qname, qname_hash(qname) FROM domains_v3; DROP TABLE domains_v3');
    }
    // Roll-ups with first and last in ms since 1970 are copied into the relative form.
    const old = (['hourly', 'daily', 'daily_domains'] as const).filter((t) => tableExists(db, t) && !hasRelativeTimes(db, t));
    for (const t of old) db.exec(`ALTER TABLE ${t} RENAME TO ${t}_v2`);
    if (old.length > 0) db.exec(ROLLUP_TABLES);
    for (const t of old) {
      const unit = t === 'hourly' ? 'hour' : 'day';
      const ms = t === 'hourly' ? HOUR_MS : DAY_MS;
      const keys = t === 'daily_domains' ? 'day, domain, bundle' : `${unit}, client, grp, bundle, verdict`;
      db.exec(`INSERT INTO ${t} (${keys}, count, first, span) SELECT ${keys}, count, first - ${unit} * ${ms}, last - first FROM ${t}_v2`);
      db.exec(`DROP TABLE ${t}_v2`);
    }
  })();
}

function tableExists(db: Db, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

function hasColumn(db: Db, table: string, column: string): boolean {
  return (db.pragma(`table_info(${table})`) as { name: string }[]).some((c) => c.name === column);
}

function hasRelativeTimes(db: Db, table: 'hourly' | 'daily' | 'daily_domains'): boolean {
  return hasColumn(db, table, 'span');
}

/**
 * SQL for the ms (since 1970) of the first and last attempt of a roll-up row; a reader opened
 * read-only on a database last written by an older server sees them in that form.
 */
export function rollupTimes(db: Db, table: 'hourly' | 'daily' | 'daily_domains'): { first: string; last: string } {
  if (!hasRelativeTimes(db, table)) return { first: 'first', last: 'last' };
  const start = table === 'hourly' ? `hour * ${HOUR_MS}` : `day * ${DAY_MS}`;
  return { first: `(${start} + first)`, last: `(${start} + first + span)` };
}

/**
 * Whether `queries` has the `count` and `span` columns (schema 2). A reader opened read-only
 * on a database last written by an older server sees one row per attempt without them.
 */
export function hasFoldedRows(db: Db): boolean {
  return hasColumn(db, 'queries', 'count');
}

/** SQL for the attempts a raw row stands for, and the ms of its last one (see `queries.count`). */
export function rowCountSql(db: Db): { count: string; lastMs: string } {
  return hasFoldedRows(db) ? { count: 'count', lastMs: `id / ${ID_PER_MS} + span` } : { count: '1', lastMs: `id / ${ID_PER_MS}` };
}

function hasTables(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").get() !== undefined;
}

/** Opens the database read-only, for reports (works while the server writes, and while it is stopped). */
export function openReader(path: string): Db {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return db;
}

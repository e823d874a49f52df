// How batches reach the writer thread without a lock: a ring of bytes in a SharedArrayBuffer,
// one writer (the DNS thread) and one reader (the writer thread), positions moved with
// Atomics. The writer thread polls it.
//
// Why not postMessage: a MessagePort's queue is guarded by a mutex, and the writer thread
// runs in SCHED_IDLE (thread-priority.ts). When the machine is busy the kernel can take the
// core from that thread while it holds the mutex — and then not give it back for hundreds of
// milliseconds — while the DNS thread waits on the same mutex to post the next batch or to
// read the thread's figures. Measured (docs/history.md, "Priority inversion"): with two other
// busy processes on a 2-core machine, the DNS thread spent 8-12% of its time blocked in
// MessagePort::OnMessage's mutex, its receive queue overflowed and clients lost answers;
// with the history off, never. Atomics never wait, so the DNS thread never waits for the
// writer thread, whatever the scheduler does to it.
//
// A record: an Int32 payload length (-1: the rest of the ring is unused, go on at 0), four
// spare bytes, the payload; records start 8-aligned. The payload: n and the meta length
// (Uint32 each), the meta (texts, roll-ups, clients, long names, node as JSON: small, per
// batch not per row), then the row columns, n values each (the qname column n * NAME_SLOT bytes).
import { emptyRows, rowColumns, type Batch, type Rows } from './batch.js';

const HEAD = 0;
const TAIL = 1;
/** Bytes of the ring before the data: head and tail (Int32 each), padded to 8. */
const HEADER = 8;
const WRAP = -1;

interface Meta {
  texts: string[];
  rollups: Batch['rollups'];
  clients: Batch['clients'];
  node: string;
  longNames: Rows['longNames'];
}

/** Bytes of each row column per row, in rowColumns order. */
function columnWidths(): number[] {
  return rowColumns(emptyRows(1)).map((c) => c.byteLength);
}
const WIDTHS = columnWidths();
const ROW_BYTES = WIDTHS.reduce((a, b) => a + b, 0);

const align8 = (n: number): number => (n + 7) & ~7;

export class BatchChannel {
  /** Share this with the other thread (workerData) and open it there with `new BatchChannel(shared)`. */
  readonly shared: SharedArrayBuffer;
  private readonly positions: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  /** Bytes of the data area: a power of two, so that positions (mod 2^32) map onto it. */
  readonly capacity: number;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  /** A new ring of at least `bytes` (rounded up to a power of two), or the one another thread made. */
  constructor(bytesOrShared: number | SharedArrayBuffer) {
    if (typeof bytesOrShared === 'number') {
      const capacity = 2 ** Math.ceil(Math.log2(Math.max(4096, bytesOrShared)));
      this.shared = new SharedArrayBuffer(HEADER + capacity);
    } else this.shared = bytesOrShared;
    this.capacity = this.shared.byteLength - HEADER;
    this.positions = new Int32Array(this.shared, 0, 2);
    this.data = new Uint8Array(this.shared, HEADER);
    this.view = new DataView(this.shared, HEADER);
  }

  /** Bytes written and not yet taken. */
  used(): number {
    return (Atomics.load(this.positions, HEAD) - Atomics.load(this.positions, TAIL)) >>> 0;
  }

  /** Bytes one raw row takes in the ring (a batch's meta aside): to size a ring. */
  static readonly bytesPerRow = ROW_BYTES;

  /**
   * Writes a batch (the DNS thread's side). Returns false, writing nothing, when the ring has
   * no room for it: the reader is far behind, or the batch is larger than half the ring.
   */
  put(batch: Batch): boolean {
    const { rows } = batch;
    const n = rows.n;
    const meta: Meta = { texts: batch.texts, rollups: batch.rollups, clients: batch.clients, node: batch.node, longNames: rows.longNames };
    const metaText = JSON.stringify(meta);
    const metaBytes = Buffer.byteLength(metaText);
    const payload = 8 + metaBytes + n * ROW_BYTES;
    const record = 8 + align8(payload);
    if (record > this.capacity / 2) return false;
    let head = Atomics.load(this.positions, HEAD);
    const tail = Atomics.load(this.positions, TAIL);
    let pos = head & (this.capacity - 1);
    const free = this.capacity - ((head - tail) >>> 0);
    const skip = pos + record > this.capacity ? this.capacity - pos : 0;
    if (skip + record > free) return false;
    if (skip > 0) {
      this.view.setInt32(pos, WRAP, true);
      head = (head + skip) | 0;
      pos = 0;
    }
    let at = pos + 8;
    this.view.setUint32(at, n, true);
    this.view.setUint32(at + 4, metaBytes, true);
    this.encoder.encodeInto(metaText, this.data.subarray(at + 8, at + 8 + metaBytes));
    at += 8 + metaBytes;
    const columns = rowColumns(rows);
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c]!;
      const bytes = n * WIDTHS[c]!;
      this.data.set(new Uint8Array(column.buffer, column.byteOffset, bytes), at);
      at += bytes;
    }
    this.view.setInt32(pos, payload, true);
    // The store that publishes the record: everything above is visible to a reader that loads it.
    Atomics.store(this.positions, HEAD, (head + record) | 0);
    return true;
  }

  /** Reads the next batch (the writer thread's side), or null when there is none. */
  take(): Batch | null {
    let tail = Atomics.load(this.positions, TAIL);
    for (;;) {
      if (tail === Atomics.load(this.positions, HEAD)) return null;
      const pos = tail & (this.capacity - 1);
      const length = this.view.getInt32(pos, true);
      if (length === WRAP) {
        tail = (tail + this.capacity - pos) | 0;
        Atomics.store(this.positions, TAIL, tail);
        continue;
      }
      const batch = this.decode(pos + 8);
      // Only now may the DNS thread write over the record.
      Atomics.store(this.positions, TAIL, (tail + 8 + align8(length)) | 0);
      return batch;
    }
  }

  private decode(start: number): Batch {
    const n = this.view.getUint32(start, true);
    const metaBytes = this.view.getUint32(start + 4, true);
    let at = start + 8;
    const meta = JSON.parse(this.decoder.decode(this.data.slice(at, at + metaBytes))) as Meta;
    at += metaBytes;
    const rows = emptyRows(n);
    rows.n = n;
    rows.longNames = meta.longNames;
    const columns = rowColumns(rows);
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c]!;
      const bytes = n * WIDTHS[c]!;
      new Uint8Array(column.buffer, column.byteOffset, bytes).set(this.data.subarray(at, at + bytes));
      at += bytes;
    }
    return { rows, texts: meta.texts, rollups: meta.rollups, clients: meta.clients, node: meta.node };
  }
}

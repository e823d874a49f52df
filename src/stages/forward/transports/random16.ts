// Random 16-bit numbers for query IDs (and the UDP client's socket choice), drawn from a
// buffer of crypto-random bytes refilled in one call: a randomFillSync per query would cost
// a call into C++ each time.
import { randomFillSync } from 'node:crypto';

export class Random16 {
  private readonly bytes: Buffer;
  private at: number;

  constructor(size = 4096) {
    this.bytes = Buffer.allocUnsafe(size);
    this.at = size;
  }

  next(): number {
    if (this.at + 2 > this.bytes.length) {
      randomFillSync(this.bytes);
      this.at = 0;
    }
    const value = this.bytes.readUInt16BE(this.at);
    this.at += 2;
    return value;
  }
}

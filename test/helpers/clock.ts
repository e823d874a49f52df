// A clock the test moves by hand, for code that takes its timers as an option (the reloader's
// debounce and polls): a test says "250 ms pass" instead of sleeping and hoping the machine
// kept up. Timers fire only inside advance(), in the order they fall due.

export interface ManualTimer {
  unref(): ManualTimer;
}

interface Entry {
  at: number;
  /** 0 for a one-shot timer, else the interval. */
  every: number;
  callback: () => void;
}

export class ManualClock {
  /** Milliseconds since the clock was made. */
  now = 0;
  private readonly entries = new Map<ManualTimer, Entry>();

  readonly setTimeout = (callback: () => void, ms: number): ManualTimer => this.add(callback, ms, 0);
  readonly setInterval = (callback: () => void, ms: number): ManualTimer => this.add(callback, ms, Math.max(1, ms));
  readonly clearTimeout = (handle: ManualTimer): void => void this.entries.delete(handle);
  readonly clearInterval = (handle: ManualTimer): void => void this.entries.delete(handle);

  /** One-shot timers waiting to fire (a debounce that is armed). */
  get pendingTimeouts(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.every === 0) n++;
    return n;
  }

  /** Moves time on by `ms`, running every timer that falls due on the way, earliest first. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [ManualTimer, Entry] | null = null;
      for (const pair of this.entries) if (pair[1].at <= end && (next === null || pair[1].at < next[1].at)) next = pair;
      if (next === null) break;
      const [handle, entry] = next;
      this.now = entry.at;
      if (entry.every === 0) this.entries.delete(handle);
      else entry.at += entry.every;
      entry.callback();
    }
    this.now = end;
  }

  private add(callback: () => void, ms: number, every: number): ManualTimer {
    const handle: ManualTimer = { unref: () => handle };
    this.entries.set(handle, { at: this.now + Math.max(0, ms), every, callback });
    return handle;
  }
}

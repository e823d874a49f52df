// Upstream failures in the log, folded: during an outage every forwarded query fails, and a
// line per query would flood the journal (thousands a second). The first failure of each
// kind is logged at once with its query; further ones within the interval are counted and
// reported in one line at its end.
import type { Logger } from '../../observe/log.js';
import { qtypeName } from '../../wire/constants.js';
import { keyToText } from '../../wire/names.js';
import type { Query } from '../../wire/query.js';

export class FailureLog {
  /** reason -> failures after the first in this interval. */
  private readonly repeats = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger, private readonly intervalMs = 1000) {}

  record(q: Query, reason: string): void {
    const seen = this.repeats.get(reason);
    if (seen !== undefined) {
      this.repeats.set(reason, seen + 1);
      return;
    }
    this.repeats.set(reason, 0);
    this.log.warn({ qname: keyToText(q.qnameKey), qtype: qtypeName(q.qtype), reason }, 'upstream failure');
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const [reason, count] of this.repeats) {
      if (count > 0) this.log.warn({ reason, count, seconds: this.intervalMs / 1000 }, 'upstream failure (repeated)');
    }
    this.repeats.clear();
  }
}

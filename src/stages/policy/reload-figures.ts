// Counts of blocklist reloads, and the list files the last load could not read, for the admin
// API's metrics.
import type { MetricsSink } from '../../pipeline/metrics.js';
import type { ReloadResult } from './reload.js';

export class ReloadFigures {
  count = 0;
  failures = 0;
  lastMs = 0;
  /** *.txt entries of the folder the last load could not read (or that are not regular files). */
  failedFiles = 0;

  /** Pass as the Reloader's onReload. */
  readonly record = (r: ReloadResult): void => {
    this.count++;
    if (!r.ok) this.failures++;
    this.lastMs = r.ms;
    // Undefined when the folder itself could not be read: the files' state is unknown, keep the last.
    if (r.failedFiles !== undefined) this.failedFiles = r.failedFiles;
  };

  collect(sink: MetricsSink): void {
    // Every worker reloads the same folder: the fewest reloads and the most failures tell the truth.
    sink.add('sinkhole_reloads_total', 'counter', 'Blocklist reloads.', this.count, 'min');
    sink.add('sinkhole_reload_failures_total', 'counter', 'Reloads that could not read the folder or a file.', this.failures, 'max');
    sink.add('sinkhole_reload_duration_seconds', 'gauge', 'Duration of the last reload.', this.lastMs / 1000, 'max');
    sink.add('sinkhole_blocklist_files_failed', 'gauge', 'List files the last load could not read (their previous rules are kept).',
      this.failedFiles, 'max');
  }
}

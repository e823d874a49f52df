// The local stage: queries answered from what this server knows itself, after the policy
// (blocking applies first) and before the cache and the upstreams:
// - ANY gets a minimal answer (RFC 8482): an ANY answer is large, a favourite of reflection
//   attacks, and no stub resolver needs one;
// - names and addresses from hosts files (hosts.ts): A, AAAA and PTR;
// - with local-domain, client names from DHCP leases (client-names files): A, AAAA and PTR;
// - reverse lookups of private and special addresses, and home.arpa (private-zones.ts): NXDOMAIN
//   with an SOA, never sent upstream, unless a forward-zone covers them.
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { MetricsSink } from '../../pipeline/metrics.js';
import { ANSWERED, PASS, type Stage, type StageResult } from '../../pipeline/stage.js';
import { minimalAnyAnswer, recordsAnswer, zoneNegativeAnswer, type SinkholeTemplates } from '../../wire/answer.js';
import { QTYPE, RCODE } from '../../wire/constants.js';
import type { Query } from '../../wire/query.js';
import type { ZoneMap } from '../../wire/zone-map.js';
import type { HostsSource, HostsTable } from './hosts.js';

export type AnyQueries = 'minimal' | 'forward';

export interface LocalOptions {
  /** 'forward' sends ANY on like any other type. */
  anyQueries: AnyQueries;
  /** RFC 6303 zones; null when `private-reverse forward`. */
  privateZones: ZoneMap<string> | null;
  /** Names under these are the forward-zones' business, not answered from privateZones. */
  forwardZones: ZoneMap<unknown> | null;
  hosts: HostsSource | null;
  /** Client names from DHCP leases (namesTable in hosts.ts), kept current by the caller; null: not served. */
  names?: { table: HostsTable } | null;
  /** The SOA of negative answers. */
  templates: SinkholeTemplates;
}

export class LocalStage implements Stage {
  readonly name = 'local';
  private anyMinimal = 0;
  private fromHosts = 0;
  private fromNames = 0;
  private privateZone = 0;

  constructor(private readonly options: LocalOptions) {}

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    const { anyQueries, hosts, privateZones, forwardZones } = this.options;
    if (q.qtype === QTYPE.ANY && anyQueries === 'minimal') {
      this.anyMinimal++;
      pipeline.reply(q, minimalAnyAnswer(q), 'local');
      return ANSWERED;
    }
    if (hosts !== null && hosts.table.size > 0 && (q.qtype === QTYPE.A || q.qtype === QTYPE.AAAA || q.qtype === QTYPE.PTR)) {
      const table = hosts.table;
      const records = q.qtype === QTYPE.PTR ? table.reverse.get(q.qnameKey)
        : q.qtype === QTYPE.A ? table.names.get(q.qnameKey)?.a : table.names.get(q.qnameKey)?.aaaa;
      if (records !== undefined) {
        this.fromHosts++;
        pipeline.reply(q, recordsAnswer(q, records), 'local');
        return ANSWERED;
      }
    }
    const names = this.options.names;
    if (names != null && names.table.size > 0 && (q.qtype === QTYPE.A || q.qtype === QTYPE.AAAA || q.qtype === QTYPE.PTR)) {
      const table = names.table;
      const records = q.qtype === QTYPE.PTR ? table.reverse.get(q.qnameKey)
        : q.qtype === QTYPE.A ? table.names.get(q.qnameKey)?.a : table.names.get(q.qnameKey)?.aaaa;
      if (records !== undefined) {
        this.fromNames++;
        pipeline.reply(q, recordsAnswer(q, records), 'local');
        return ANSWERED;
      }
    }
    if (privateZones !== null) {
      const m = privateZones.match(q.qnameKey);
      if (m >= 0 && (forwardZones === null || forwardZones.match(q.qnameKey) < 0)) {
        this.privateZone++;
        const offset = m % 256;
        // The zone's own name exists (NODATA); every name below it does not (NXDOMAIN).
        pipeline.reply(q, zoneNegativeAnswer(q, this.options.templates, offset, offset === 0 ? RCODE.NOERROR : RCODE.NXDOMAIN), 'local');
        return ANSWERED;
      }
    }
    return PASS;
  }

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_local_answers_total', 'counter', 'Queries answered from local data, by kind.',
      [[{ kind: 'any_minimal' }, this.anyMinimal], [{ kind: 'hosts' }, this.fromHosts], [{ kind: 'client_names' }, this.fromNames], [{ kind: 'private_zone' }, this.privateZone]]);
  }

  close(): void {
    this.options.hosts?.close();
  }
}

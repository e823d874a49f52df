// The stream listeners' figures (TCP and DoT) for the admin API: open connections and why
// connections were closed or refused (docs/limits.md).
import type { MetricsSink } from '../pipeline/metrics.js';
import type { TcpListener } from './tcp.js';

export function collectStreamListeners(sink: MetricsSink, listeners: readonly { label: string; listener: TcpListener }[]): void {
  sink.add('sinkhole_tcp_connections', 'gauge', 'Open client connections per stream listener (TCP, DoT).',
    listeners.map(({ label, listener }) => [{ listen: label }, listener.connections.size]));
  const reasons = ['accepted', 'refused', 'evicted', 'idleTimeouts', 'messageTimeouts', 'stalled'] as const;
  sink.add('sinkhole_tcp_connection_events_total', 'counter', 'Client connections accepted, refused at a cap, closed to make room, or closed by a deadline.',
    listeners.flatMap(({ label, listener }) => reasons.map((r): [Record<string, string>, number] => [{ listen: label, event: r }, listener.counters[r]])));
}

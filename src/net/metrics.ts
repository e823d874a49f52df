// The stream listeners' figures (TCP and DoT) for the admin API: open connections, connections
// accepted and refused, and why connections were closed (docs/limits.md, "TCP").
import type { MetricsSink } from '../pipeline/metrics.js';
import { BatchUdpListener, type AnyUdpListener } from './batch-udp.js';
import type { TcpCounters, TcpListener } from './tcp.js';

/** Why a connection was closed by the server, as the metric's `reason` label says it. */
const CLOSED: readonly [keyof TcpCounters, string][] = [
  ['evicted', 'evicted'], ['idleTimeouts', 'idle'], ['messageTimeouts', 'message_deadline'], ['stalled', 'unanswered'],
];

export function collectStreamListeners(sink: MetricsSink, listeners: readonly { label: string; listener: TcpListener }[]): void {
  sink.add('sinkhole_tcp_connections', 'gauge', 'Open client connections per stream listener (TCP, DoT).',
    listeners.map(({ label, listener }) => [{ listen: label }, listener.connections.size]));
  sink.add('sinkhole_tcp_connections_accepted_total', 'counter', 'Client connections accepted.',
    listeners.map(({ label, listener }) => [{ listen: label }, listener.counters.accepted]));
  sink.add('sinkhole_tcp_connections_refused_total', 'counter', 'Client connections refused at a cap with no idle connection to close.',
    listeners.map(({ label, listener }) => [{ listen: label }, listener.counters.refused]));
  sink.add('sinkhole_tcp_connections_closed_total', 'counter',
    'Client connections the server closed: to make room at a cap (evicted), idle, a message not whole in time, queries unanswered.',
    listeners.flatMap(({ label, listener }) => CLOSED.map(([field, reason]): [Record<string, string>, number] =>
      [{ listen: label, reason }, listener.counters[field]])));
}

/** The UDP listeners' drops: queries that waited too long in the receive queue, answers the socket could not take. */
export function collectUdpListeners(sink: MetricsSink, listeners: readonly AnyUdpListener[]): void {
  const batched = listeners.filter((l): l is BatchUdpListener => l instanceof BatchUdpListener);
  sink.add('sinkhole_udp_queries_dropped_total', 'counter',
    'UDP queries dropped unanswered because they waited longer than udp-max-wait in the receive queue (overload).',
    batched.map((l) => [{ listen: `udp://${l.endpoint.label}` }, l.stale]));
  sink.add('sinkhole_udp_answers_dropped_total', 'counter', 'UDP answers dropped because the socket\'s send queue was full.',
    batched.map((l) => [{ listen: `udp://${l.endpoint.label}` }, l.dropped]));
}

// From the configured upstreams (config.upstreams) to what the forwarder asks: plain ones
// stay addresses; tls:// and https:// ones become kept-open transports, sharing the extra
// CA (--upstream-ca) and one lookup client for names (--bootstrap).
import { readFileSync } from 'node:fs';
import type { Endpoint } from '../../net/endpoint.js';
import { bootstrapResolver } from './bootstrap.js';
import type { UpstreamTarget } from './forwarder.js';
import type { EncryptedOptions } from './transports/encrypted.js';
import { HttpsUpstream } from './transports/https.js';
import { TlsUpstream } from './transports/tls.js';
import { UdpUpstreamClient } from './transports/udp.js';
import type { UpstreamSpec } from './upstream-url.js';

export interface UpstreamSetup {
  upstreamCa: string | null;
  bootstrap: Endpoint[];
  /** A connection to an encrypted upstream failed (handshake, refused...): one line for the log. */
  onFailure: (failure: string) => void;
  onSocketError: (err: Error) => void;
}

/** Builds the transports of one list of upstreams (the default ones, or a forward-zone's). */
export interface UpstreamBuilder {
  build(specs: UpstreamSpec[]): UpstreamTarget[];
  /** Closes the --bootstrap lookup client (the transports close with their forwarder). */
  close(): void;
}

/** One builder for every list: the CA file is read once, and one lookup client serves all names. */
export function upstreamBuilder(setup: UpstreamSetup): UpstreamBuilder {
  let lookups: UdpUpstreamClient | null = null;
  const options: EncryptedOptions = { onFailure: setup.onFailure };
  if (setup.upstreamCa !== null) options.ca = [readFileSync(setup.upstreamCa)];
  if (setup.bootstrap.length > 0) {
    lookups = new UdpUpstreamClient(setup.onSocketError);
    options.resolveHost = bootstrapResolver(setup.bootstrap, lookups);
  }
  return {
    build: (specs) => specs.map((spec): UpstreamTarget => {
      if (spec.kind === 'udp') return spec.endpoint;
      return spec.kind === 'tls' ? new TlsUpstream(spec, options) : new HttpsUpstream(spec, options);
    }),
    close: () => lookups?.close(),
  };
}

export function buildUpstreams(specs: UpstreamSpec[], setup: UpstreamSetup): { targets: UpstreamTarget[]; close: () => void } {
  const builder = upstreamBuilder(setup);
  return { targets: builder.build(specs), close: () => builder.close() };
}

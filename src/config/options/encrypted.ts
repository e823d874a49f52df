// Encrypted DNS: DoT and DoH listeners for clients and their certificate, and what the
// tls:// and https:// upstreams need (an extra CA, the servers that look up their names).
// The upstreams themselves are --upstream values (forward.ts). See docs/encrypted-dns.md.
import { accessSync, constants, readFileSync } from 'node:fs';
import { loadCertificate } from '../../net/certificate.js';
import { needsBootstrap } from '../../stages/forward/upstream-url.js';
import { ConfigError } from '../errors.js';
import { list, optional } from '../option.js';
import { endpoint, text } from '../values.js';
import type { Area } from './area.js';

export const listenTls = list({
  name: 'listen-tls', arg: 'ADDR:PORT', value: endpoint(undefined), default: [], commands: ['serve'], field: 'listenTls',
  defaultText: 'off',
  help: 'serve DNS over TLS (RFC 7858) here, e.g. 0.0.0.0:853; needs --tls-cert and --tls-key',
  details: 'Same policy, client rules, statistics, idle timeout and connection cap as TCP.',
});

export const listenHttps = list({
  name: 'listen-https', arg: 'ADDR:PORT', value: endpoint(undefined), default: [], commands: ['serve'], field: 'listenHttps',
  defaultText: 'off',
  help: 'serve DNS over HTTPS (RFC 8484) at /dns-query here, HTTP/2 and HTTP/1.1, e.g. 0.0.0.0:443',
  details: 'GET (?dns=) and POST. Browsers can be pointed here by policy (Chrome and Edge DnsOverHttpsTemplates, Firefox DNSOverHTTPS).',
});

export const tlsCert = optional({
  name: 'tls-cert', arg: 'FILE', value: text, commands: ['serve'], field: 'tlsCert',
  help: 'certificate (PEM, with its chain) of the DoT and DoH listeners; re-read on SIGHUP',
});

export const tlsKey = optional({
  name: 'tls-key', arg: 'FILE', value: text, commands: ['serve'], field: 'tlsKey',
  help: 'private key (PEM) of --tls-cert; re-read on SIGHUP',
});

export const upstreamCa = optional({
  name: 'upstream-ca', arg: 'FILE', value: text, commands: ['serve', 'check'], field: 'upstreamCa',
  defaultText: 'the system\'s CAs only',
  help: 'also trust this CA (PEM) for tls:// and https:// upstreams, beside the system\'s CAs',
});

export const bootstrap = list({
  name: 'bootstrap', arg: 'IP[:PORT]', value: endpoint(53), default: [], commands: ['serve', 'check'], field: 'bootstrap',
  help: 'plain DNS server that looks up upstreams given by name (https://dns.example/dns-query)',
  details: 'Asked once at start and again after a failed connection; the system resolver is never used.',
});

export const encryptedArea: Area = {
  title: 'Encrypted DNS (DoT, DoH)',
  options: [listenTls, listenHttps, tlsCert, tlsKey, upstreamCa, bootstrap],
  finish: (config, settings) => {
    const listening = settings.given(listenTls)?.[0] ?? settings.given(listenHttps)?.[0];
    if (listening !== undefined) {
      if (config.tlsCert === null || config.tlsKey === null) {
        throw new ConfigError(`${listening.where}: serving DNS over TLS or HTTPS needs --tls-cert FILE and --tls-key FILE (PEM)`);
      }
      try {
        loadCertificate({ cert: config.tlsCert, key: config.tlsKey });
      } catch (err) {
        throw new ConfigError((err as Error).message);
      }
    } else if (config.tlsCert !== null || config.tlsKey !== null) {
      const where = (settings.given(tlsCert) ?? settings.given(tlsKey))![0]!.where;
      throw new ConfigError(`${where}: --tls-cert and --tls-key are for --listen-tls and --listen-https; add one of those, or leave them out`);
    }
    if (config.upstreamCa !== null) {
      const where = settings.given(upstreamCa)![0]!.where;
      let pem: string;
      try {
        accessSync(config.upstreamCa, constants.R_OK);
        pem = readFileSync(config.upstreamCa, 'latin1');
      } catch (err) {
        throw new ConfigError(`${where}: cannot read ${config.upstreamCa} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a readable PEM file`);
      }
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`${where}: ${config.upstreamCa} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
    const named = [...config.upstreams, ...config.forwardZones.flatMap((z) => z.upstreams)].find((u) => u.kind !== 'udp' && needsBootstrap(u));
    if (named !== undefined && config.bootstrap.length === 0) {
      throw new ConfigError(`upstream ${named.label} is given by name: add --bootstrap IP (a plain DNS server to look it up; the system resolver is never used), or write its address with #NAME`);
    }
  },
};

// What an --upstream value names: a plain DNS server (`IP[:PORT]`), DNS over TLS
// (`tls://HOST[:853][#NAME]`, RFC 7858) or DNS over HTTPS (`https://HOST[:443]/PATH[#NAME]`,
// RFC 8484). NAME is what the server's certificate must be valid for; it defaults to HOST
// when HOST is a name. An IP address with no #NAME leaves nothing to verify, and is refused.
import { isIP } from 'node:net';
import { parseEndpoint, type Endpoint } from '../../net/endpoint.js';
import { textToKey } from '../../wire/names.js';

export interface PlainUpstream {
  kind: 'udp';
  endpoint: Endpoint;
  label: string;
}

export interface EncryptedUpstream {
  kind: 'tls' | 'https';
  /** An IP address, or a name resolved through --bootstrap (never the system resolver). */
  host: string;
  port: number;
  /** The name the certificate is checked against (TLS SNI too). */
  serverName: string;
  /** `/dns-query` for https; '' for tls. */
  path: string;
  /** The URL as shown in logs and in EDE texts, e.g. `tls://192.0.2.1:853#dns.example`. */
  label: string;
}

export type UpstreamSpec = PlainUpstream | EncryptedUpstream;

/** True when `host` has to be looked up (through --bootstrap) before connecting. */
export function needsBootstrap(u: EncryptedUpstream): boolean {
  return isIP(u.host) === 0;
}

function isHostName(text: string): boolean {
  return typeof textToKey(text) === 'string' && /[a-z]/i.test(text) && !text.endsWith('.');
}

export function parseUpstream(text: string): UpstreamSpec | { error: string } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme === null) {
    const endpoint = parseEndpoint(text, 53);
    if ('error' in endpoint) return { error: `upstream "${text}": ${endpoint.error}` };
    if (endpoint.port === 0) return { error: `upstream "${text}": port 0 is no port a server answers on; give the real one (e.g. ${endpoint.family === 6 ? `[${endpoint.host}]` : endpoint.host}:53)` };
    return { kind: 'udp', endpoint, label: endpoint.label };
  }
  const kind = scheme[1]!.toLowerCase();
  if (kind === 'udp' || kind === 'dns') return parseUpstream(text.slice(scheme[0].length));
  if (kind !== 'tls' && kind !== 'https') {
    return { error: `upstream "${text}": unknown scheme "${scheme[1]}://"; write IP[:PORT], tls://IP[:853]#NAME or https://HOST[:443]/dns-query` };
  }
  let rest = text.slice(scheme[0].length);
  let fragment: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
    if (!isHostName(fragment)) return { error: `upstream "${text}": "#${fragment}" is not a host name to verify the certificate against` };
  }
  let authority = rest;
  let path = '';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    authority = rest.slice(0, slash);
    path = rest.slice(slash);
  }
  if (kind === 'tls' && path !== '' && path !== '/') return { error: `upstream "${text}": a tls:// upstream has no path; write tls://IP[:853]#NAME` };
  if (kind === 'https') {
    if (path === '' || path === '/') return { error: `upstream "${text}": an https:// upstream needs the DoH path, e.g. https://${authority}/dns-query` };
    if (/[\s?]/.test(path)) return { error: `upstream "${text}": the path "${path}" must not hold spaces or a query string` };
  }
  const defaultPort = kind === 'tls' ? 853 : 443;
  // Host names are allowed here (resolved through --bootstrap), unlike plain upstreams.
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d*))?$/.exec(authority);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
    if (isIP(host) !== 6) return { error: `upstream "${text}": "[${host}]" is not an IPv6 address` };
  } else if (isIP(authority) === 6 || (authority.match(/:/g) ?? []).length > 1) {
    return { error: `upstream "${text}": write an IPv6 address in brackets, e.g. ${kind}://[${authority}]${path}` };
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (isIP(host) === 0 && !isHostName(host)) return { error: `upstream "${text}": "${host}" is neither an IP address nor a host name` };
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (portText !== undefined && (!/^\d+$/.test(portText) || port < 1 || port > 65535)) {
    return { error: `upstream "${text}": port "${portText}" must be a number from 1 to 65535` };
  }
  const serverName = fragment ?? (isIP(host) === 0 ? host.toLowerCase() : '');
  if (serverName === '') {
    return { error: `upstream "${text}": no name to verify the certificate against; add it after #, e.g. ${kind}://${authority}${path}#dns.example` };
  }
  const hostText = isIP(host) === 6 ? `[${host}]` : host;
  const label = `${kind}://${hostText}:${port}${path}${fragment !== undefined ? `#${fragment}` : ''}`;
  return { kind, host, port, serverName, path, label };
}

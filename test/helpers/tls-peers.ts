// Real peers for the encrypted DNS tests: a CA and certificates made by `openssl` in the
// test's temp folder, and dnsdist (Debian package) serving DoT and DoH on loopback in front
// of the test's in-process plain upstream.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import type { Test } from 'tap';
import { join } from 'node:path';

export const inCi = process.env.CI === 'true';

export function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** False (and a comment) when the tool is missing outside CI; a failed assertion in CI. */
export function needTool(t: Test, tool: string, pkg: string): boolean {
  if (have(tool)) return true;
  t.notOk(inCi, `${tool} is installed in CI (.ci/run installs ${pkg})`);
  t.comment(`skipped: ${tool} is not installed here (apt-get install ${pkg})`);
  return false;
}

export interface Certificates {
  dir: string;
  /** The test CA (PEM file): what --upstream-ca and the clients trust. */
  ca: string;
  /** dns.test and 127.0.0.1, signed by the CA, valid now. */
  cert: string;
  key: string;
  /** Same name and key, signed by the CA, but valid only in January 2020. */
  expiredCert: string;
  /** A key that is not the certificate's (for the mismatched-pair error). */
  otherKey: string;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=sinkhole test CA', '-days', '2']);
  openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=dns.test',
    '-addext', 'subjectAltName=DNS:dns.test,DNS:localhost.test,IP:127.0.0.1']);
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-copy_extensions', 'copyall']);
  // `openssl x509` cannot date a certificate in the past; `openssl ca` can.
  writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n' +
    'default_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  openssl(dir, ['ca', '-config', 'ca.cnf', '-batch', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'server.csr',
    '-out', 'expired.pem', '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-notext']);
  openssl(dir, ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other.key']);
  return {
    dir, ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key'),
    expiredCert: join(dir, 'expired.pem'), otherKey: join(dir, 'other.key'),
  };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export interface Dnsdist {
  tlsPort: number;
  httpsPort: number;
  process: ChildProcess;
  output: () => string;
}

/**
 * dnsdist serving DoT on `tlsPort` and DoH on `httpsPort` (path /dns-query) with `cert`,
 * forwarding over plain DNS to 127.0.0.1:`upstreamPort`. Stopped (by its PID) at teardown.
 */
export async function startDnsdist(t: Test, o: { upstreamPort: number; cert: string; key: string }): Promise<Dnsdist> {
  for (let attempt = 0; ; attempt++) {
    const [plainPort, tlsPort, httpsPort] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
    const dir = mkdtempSync(join(tmpdir(), 'sinkhole-dnsdist-'));
    const conf = join(dir, 'dnsdist.conf');
    writeFileSync(conf, [
      'setSecurityPollSuffix("")',
      `setLocal("127.0.0.1:${plainPort}")`,
      `addTLSLocal("127.0.0.1:${tlsPort}", "${o.cert}", "${o.key}", {maxInFlight=10000})`,
      `addDOHLocal("127.0.0.1:${httpsPort}", "${o.cert}", "${o.key}", "/dns-query")`,
      // setUp(): no health checks (they would be queries the test upstream records).
      `newServer({address="127.0.0.1:${o.upstreamPort}", maxInFlight=10000}):setUp()`,
      'setACL({"127.0.0.0/8"})',
      '',
    ].join('\n'));
    const child = spawn('dnsdist', ['--supervised', '--disable-syslog', '-C', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      const check = (): void => {
        if (output.includes(`127.0.0.1:${httpsPort} for DoH`) && output.includes(`127.0.0.1:${tlsPort} for TLS`)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout!.on('data', check);
      child.stderr!.on('data', check);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ready) {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      if (attempt < 3 && /already in use/.test(output)) continue;
      throw new Error(`dnsdist did not start: ${output}`);
    }
    t.teardown(async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    });
    return { tlsPort, httpsPort, process: child, output: () => output };
  }
}

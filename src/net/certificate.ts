// The server certificate of the DoT and DoH listeners: --tls-cert and --tls-key (PEM), read
// at start and again on SIGHUP (a renewed certificate, e.g. from certbot, without a restart).
// A pair that cannot be read or does not match is one line naming both files; on reload
// the old pair stays in use.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { StartupError } from './bind-error.js';

export interface CertificateFiles {
  cert: string;
  key: string;
}

/** Reads and checks the pair; throws a StartupError with one line when it is unusable. */
export function loadCertificate(files: CertificateFiles): SecureContextOptions {
  const read = (path: string, flag: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
      throw new StartupError(`cannot read ${flag} ${path}: ${why}; give a readable PEM file`);
    }
  };
  const cert = read(files.cert, '--tls-cert');
  const key = read(files.key, '--tls-key');
  const options: SecureContextOptions = { cert, key };
  try {
    // Builds a context once to find a bad PEM or a key that is not the certificate's.
    createSecureContext(options);
  } catch (err) {
    const message = (err as Error).message;
    const why = /key values mismatch/.test(message) ? 'the key does not belong to the certificate'
      : /no start line|bad base64|PEM/i.test(message) ? 'not a PEM certificate and key' : message;
    throw new StartupError(`--tls-cert ${files.cert} and --tls-key ${files.key}: ${why}; give the certificate and its own private key, both PEM`);
  }
  return options;
}

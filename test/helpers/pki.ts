// Test certificates with openssl: a throwaway CA and client certificates signed by it (or by the e2e rig's CA),
// for the kubelet API's x509 authentication.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

const ssl = (dir: string, args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
const pair = (dir: string, name: string): CertPair => ({
  certFile: path.join(dir, `${name}.crt`),
  keyFile: path.join(dir, `${name}.key`),
  cert: readFileSync(path.join(dir, `${name}.crt`), 'utf8'),
  key: readFileSync(path.join(dir, `${name}.key`), 'utf8'),
});

/** A self-signed CA `<dir>/<name>.{crt,key}`. */
export function makeCA(dir: string, name: string): CertPair {
  ssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${name}`, '-days', '1', '-out', `${name}.crt`]);
  return pair(dir, name);
}

/** A client certificate for `subject` (e.g. "/CN=alice/O=dev") signed by the CA files given. */
export function signClient(dir: string, ca: { certFile: string; keyFile: string }, name: string, subject: string): CertPair {
  ssl(dir, ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  ssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-CAserial', path.join(dir, 'ca.srl'), '-days', '1', '-out', `${name}.crt`]);
  return pair(dir, name);
}

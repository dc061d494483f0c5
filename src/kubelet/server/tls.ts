// The kubelet API's serving certificate, as the kubelet picks it (cmd/kubelet/app/server.go
// InitializeTLS): --tls-cert-file/--tls-private-key-file when given; otherwise <cert-dir>/kubelet.crt and
// kubelet.key, generated once as a self-signed certificate for the host name and node IPs (valid one year) and
// reused on later starts. The key file is written 0600. The certificate is written with node:crypto and a small DER
// writer (@peculiar/x509 needs a reflect-metadata polyfill that berth does not ship).
import { X509Certificate, createPrivateKey, generateKeyPair, sign } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../../lib/index.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface ServingCert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  generated: boolean;
}

export interface ServingCertOptions {
  certFile?: string;
  keyFile?: string;
  certDir: string;
  hostname: string;
  /** Node IPs for the subject alternative names (loopback is added as upstream does). */
  ips: string[];
  now?: Date;
}

/** Loads the configured pair, or the generated one in certDir, generating it the first time. */
export async function loadServingCert(o: ServingCertOptions): Promise<ServingCert> {
  if (o.certFile && o.keyFile) {
    const [cert, key] = await Promise.all([readFile(o.certFile, 'utf8'), readFile(o.keyFile, 'utf8')]);
    return { cert, key, certFile: o.certFile, keyFile: o.keyFile, generated: false };
  }
  const certFile = path.join(o.certDir, 'kubelet.crt');
  const keyFile = path.join(o.certDir, 'kubelet.key');
  const existing = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]).catch(() => undefined);
  // A pair cut short (an older berth wrote it in place; the disk was full) is generated again rather than served.
  if (existing && isWholePair(existing[0], existing[1])) return { cert: existing[0], key: existing[1], certFile, keyFile, generated: false };
  const { cert, key } = await generateSelfSigned(o.hostname, o.ips, o.now ?? new Date());
  await mkdir(o.certDir, { recursive: true, mode: 0o700 });
  // Each file whole or not at all (temporary file, fsync, rename), the key first: a pair is loaded only when both
  // are there, so a failure between the two (ENOSPC) leaves nothing that is ever served.
  await writeFileAtomic(keyFile, key, { mode: 0o600 });
  await writeFileAtomic(certFile, cert, { mode: 0o644 });
  return { cert, key, certFile, keyFile, generated: true };
}

/** The certificate parses and the key parses and belongs to it. */
function isWholePair(cert: string, key: string): boolean {
  try {
    return new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch {
    return false;
  }
}

/** A self-signed serving certificate (RSA 2048, SHA-256) for `hostname@<unix time>` with DNS and IP SANs. */
export async function generateSelfSigned(hostname: string, ips: string[], now: Date): Promise<{ cert: string; key: string }> {
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const names = [...new Set([hostname, 'localhost'])];
  const addrs = [...new Set([...ips.filter((ip) => isIP(ip)), '127.0.0.1'])];
  const tbs = buildTbsCertificate({
    serial: BigInt(now.getTime()),
    commonName: `${hostname}@${Math.floor(now.getTime() / 1000)}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 365 * 24 * 3600 * 1000),
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    dnsNames: names,
    ips: addrs,
  });
  const signature = sign('sha256', tbs, privateKey);
  const der = seq(tbs, SHA256_RSA, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return { cert: pem('CERTIFICATE', der), key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

// A minimal DER writer: just what an X.509 v3 certificate needs (RFC 5280).
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a! + b!];
  for (const v of rest) {
    const bytes = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) bytes.unshift((x & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}
function integer(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}
const name = (cn: string): Buffer => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value));
const SHA256_RSA = seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** Pure: the DER TBSCertificate of a self-signed serving certificate. */
export function buildTbsCertificate(o: { serial: bigint; commonName: string; notBefore: Date; notAfter: Date; spki: Buffer; dnsNames: string[]; ips: string[] }): Buffer {
  const san = seq(...o.dnsNames.map((n) => tlv(0x82, Buffer.from(n))), ...o.ips.map((ip) => tlv(0x87, ipBytes(ip))));
  const extensions = tlv(
    0xa3,
    seq(
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x05, 0xa0]))), // keyUsage: digitalSignature, keyEncipherment
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
      extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
      extension('2.5.29.17', false, san),
    ),
  );
  return seq(tlv(0xa0, integer(2n)), integer(o.serial), SHA256_RSA, name(o.commonName), seq(time(o.notBefore), time(o.notAfter)), name(o.commonName), o.spki, extensions);
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// The generated serving certificate on disk (issue 9, scenario 4: a full root dir): a pair an earlier start left cut
// short is generated again rather than served, and the files are written whole or not at all.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadServingCert } from '../../src/kubelet/server/tls.ts';

describe('loadServingCert with a damaged pair in --cert-dir', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-tls-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const whole = (c: { cert: string; key: string }): boolean => new X509Certificate(c.cert).checkPrivateKey(createPrivateKey(c.key));

  it('an empty certificate next to a whole key (a write cut short by a full disk) is generated again, not served', async () => {
    const first = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: [] });
    writeFileSync(first.certFile, '');
    const again = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: [] });
    expect(again.generated).toBe(true);
    expect(whole(again)).toBe(true);
    expect(readFileSync(again.certFile, 'utf8')).toBe(again.cert);
  });

  it('a truncated key is generated again', async () => {
    const first = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: [] });
    writeFileSync(first.keyFile, first.key.slice(0, 100));
    const again = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: [] });
    expect(again.generated).toBe(true);
    expect(whole(again)).toBe(true);
  });

  it('a whole pair is reused as it is, and writing one leaves no temporary file behind', async () => {
    const first = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: [] });
    const again = await loadServingCert({ certDir: dir, hostname: 'node-a', ips: [] });
    expect(again.generated).toBe(false);
    expect(again.cert).toBe(first.cert);
    expect(readdirSync(dir).sort()).toEqual(['kubelet.crt', 'kubelet.key']);
  });
});

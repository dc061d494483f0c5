// The bundle ships the nftables mode's netlink helper: scripts/build.ts copies nfnl-helper.py next to the bundle,
// and the bundled transport looks for it next to itself, so `bin/berth` (which runs dist/cli/main.mjs) finds it
// even when only dist/ was copied. The helper started from that copy answers a generation read in a namespace.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/berth.ts';
import { Netns, destroyAll } from './helpers/netns.ts';

describe('the bundle and the netlink helper', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-nfnl-'));
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await destroyAll();
  });

  it('copies nfnl-helper.py next to the bundle, which resolves it relative to itself', async () => {
    const entry = path.join(dir, 'dist', 'cli', 'main.mjs');
    execFileSync(process.execPath, [path.join(REPO, 'scripts/build.ts'), '--outfile', entry], { stdio: 'pipe', timeout: 120_000 });
    const copied = path.join(dir, 'dist', 'cli', 'nfnl-helper.py');
    expect(readFileSync(copied, 'utf8')).toBe(readFileSync(path.join(REPO, 'src/proxy/nftables/netlink/nfnl-helper.py'), 'utf8'));
    expect(readFileSync(entry, 'utf8')).toContain('"./nfnl-helper.py"');
    // The copy works: one GETGEN (nlmsghdr 16 + nfgenmsg 4, NLM_F_REQUEST|NLM_F_ACK, seq 1) and its reply.
    const ns = await Netns.create('nfnlb');
    const req = Buffer.alloc(20);
    req.writeUInt32LE(20, 0);
    req.writeUInt16LE((10 << 8) | 16, 4);
    req.writeUInt16LE(0x5, 6);
    req.writeUInt32LE(1, 8);
    const frame = Buffer.alloc(9);
    frame.writeUInt32LE(req.length + 5, 0);
    frame.writeUInt8(0x78, 4);
    frame.writeUInt32LE(1, 5);
    const out = execFileSync('nsenter', [`--net=/run/netns/${ns.name}`, '--', 'python3', '-S', copied], { input: Buffer.concat([frame, req]), timeout: 20_000 });
    // "ready" frame, then the answer: status 0, NEWGEN (type 0x0a0f) and the ack (NLMSG_ERROR, error 0).
    const readyLen = out.readUInt32LE(0);
    expect(out.subarray(5, 4 + readyLen).toString()).toBe('ready');
    const ans = out.subarray(4 + readyLen);
    expect(ans[4]).toBe(0);
    const msgs = ans.subarray(5);
    expect(msgs.readUInt16LE(4)).toBe((10 << 8) | 15);
    const second = (msgs.readUInt32LE(0) + 3) & ~3;
    expect(msgs.readUInt16LE(second + 4)).toBe(2);
    expect(msgs.readInt32LE(second + 16)).toBe(0);
  });
});

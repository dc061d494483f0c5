import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StreamDemuxer, readMultiplexed } from '../../src/cri/docker/exec.ts';

function frame(type: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

describe('StreamDemuxer', () => {
  it('splits stdout and stderr frames, also across chunk boundaries', () => {
    const all = Buffer.concat([frame(1, 'out1 '), frame(2, 'err'), frame(1, 'out2'), frame(0, 'stdin-ignored')]);
    for (const cut of [1, 3, 8, 9, 14, all.length - 1]) {
      const d = new StreamDemuxer();
      d.push(all.subarray(0, cut));
      d.push(all.subarray(cut));
      expect(d.result()).toEqual({ stdout: 'out1 out2', stderr: 'err' });
    }
  });

  it('caps each stream', () => {
    const d = new StreamDemuxer(5);
    d.push(Buffer.concat([frame(1, 'abc'), frame(1, 'defgh'), frame(2, '0123456789')]));
    expect(d.result()).toEqual({ stdout: 'abcde', stderr: '01234' });
  });
});

describe('readMultiplexed', () => {
  it('resolves at the end of the stream', async () => {
    const s = new PassThrough();
    const p = readMultiplexed(s);
    s.write(frame(1, 'hello'));
    s.end(frame(2, 'bye'));
    await expect(p).resolves.toEqual({ stdout: 'hello', stderr: 'bye' });
  });

  it('rejects when the stream fails', async () => {
    const s = new PassThrough();
    const p = readMultiplexed(s);
    s.destroy(new Error('boom'));
    await expect(p).rejects.toThrow('boom');
  });
});

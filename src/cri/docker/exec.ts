// Docker's multiplexed attach/exec stream (non-TTY): frames of an 8-byte header [stream, 0, 0, 0, size(uint32 BE)]
// followed by `size` bytes, stream 1 = stdout, 2 = stderr. Used by execSync (probes, lifecycle hooks), whose
// output is capped: a chatty probe must not grow berth's memory.

/** Each of stdout/stderr keeps at most this many bytes (the rest is read and dropped). */
export const EXEC_OUTPUT_LIMIT_BYTES = 16 * 1024;

export class StreamDemuxer {
  private pending: Buffer = Buffer.alloc(0);
  private readonly out: Record<1 | 2, Buffer[]> = { 1: [], 2: [] };
  private readonly size: Record<1 | 2, number> = { 1: 0, 2: 0 };
  private readonly limitBytes: number;

  constructor(limitBytes = EXEC_OUTPUT_LIMIT_BYTES) {
    this.limitBytes = limitBytes;
  }

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const type = this.pending[0];
      const len = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + len) break;
      const payload = this.pending.subarray(8, 8 + len);
      this.pending = this.pending.subarray(8 + len);
      if (type === 1 || type === 2) this.keep(type, payload);
    }
  }

  private keep(type: 1 | 2, payload: Buffer): void {
    const room = this.limitBytes - this.size[type];
    if (room <= 0) return;
    const part = payload.length > room ? payload.subarray(0, room) : payload;
    this.out[type].push(Buffer.from(part));
    this.size[type] += part.length;
  }

  result(): { stdout: string; stderr: string } {
    return { stdout: Buffer.concat(this.out[1]).toString('utf8'), stderr: Buffer.concat(this.out[2]).toString('utf8') };
  }
}

/** Reads a multiplexed stream to its end. */
export function readMultiplexed(stream: NodeJS.ReadableStream, limitBytes = EXEC_OUTPUT_LIMIT_BYTES): Promise<{ stdout: string; stderr: string }> {
  const demux = new StreamDemuxer(limitBytes);
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve(demux.result());
    };
    stream.on('data', (chunk: Buffer | string) => demux.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
    stream.on('end', finish);
    stream.on('error', (err: unknown) => {
      if (done) return;
      done = true;
      reject(err);
    });
    stream.on('close', () => {
      if (!done) {
        done = true;
        reject(new Error('exec stream closed before its end'));
      }
    });
  });
}

import { describe, expect, it } from 'vitest';
import { buildPauseBinary, buildPauseImageTar, isLocalPauseImage, pauseImportOptions } from '../../src/cri/docker/pause-image.ts';
import { buildTar, buildTarHeader } from '../../src/cri/docker/tar.ts';

function readOctal(b: Buffer, off: number, len: number): number {
  return parseInt(b.subarray(off, off + len).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
}

describe('buildPauseBinary', () => {
  it.each([
    ['x64', 62],
    ['arm64', 183],
  ])('%s: a static ELF64 executable with one loadable segment', (arch, machine) => {
    const elf = buildPauseBinary(arch);
    expect(elf.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(elf[4]).toBe(2); // 64-bit
    expect(elf[5]).toBe(1); // little endian
    expect(elf.readUInt16LE(16)).toBe(2); // ET_EXEC
    expect(elf.readUInt16LE(18)).toBe(machine);
    const entry = Number(elf.readBigUInt64LE(24));
    const phoff = Number(elf.readBigUInt64LE(32));
    const phnum = elf.readUInt16LE(56);
    expect(phnum).toBe(2);
    const load = elf.subarray(phoff, phoff + 56);
    expect(load.readUInt32LE(0)).toBe(1); // PT_LOAD
    const vaddr = Number(load.readBigUInt64LE(16));
    expect(Number(load.readBigUInt64LE(32))).toBe(elf.length); // whole file mapped
    expect(entry).toBeGreaterThan(vaddr);
    expect(entry).toBeLessThan(vaddr + elf.length);
    expect(elf.subarray(phoff + 56).readUInt32LE(0)).toBe(0x6474e551); // PT_GNU_STACK
    expect(elf.length).toBeLessThan(512);
  });

  it('sets up SIGCHLD as SIG_IGN|SA_NOCLDWAIT and the exit handler with SA_RESTORER', () => {
    const elf = buildPauseBinary('x64');
    // The two struct sigaction sit at the end of the file.
    const child = elf.subarray(elf.length - 64, elf.length - 32);
    const exit = elf.subarray(elf.length - 32);
    expect(child.readBigUInt64LE(0)).toBe(1n); // SIG_IGN
    expect(child.readBigUInt64LE(8)).toBe(0x04000002n); // SA_RESTORER | SA_NOCLDWAIT
    const handler = exit.readBigUInt64LE(0);
    const restorer = exit.readBigUInt64LE(16);
    expect(exit.readBigUInt64LE(8)).toBe(0x04000000n);
    // handler: mov eax, 231 (exit_group); restorer: mov eax, 15 (rt_sigreturn)
    const off = (a: bigint): number => Number(a - 0x400000n);
    expect([...elf.subarray(off(handler), off(handler) + 5)]).toEqual([0xb8, 231, 0, 0, 0]);
    expect([...elf.subarray(off(restorer), off(restorer) + 7)]).toEqual([0xb8, 15, 0, 0, 0, 0x0f, 0x05]);
  });

  it('refuses other architectures with a clear message', () => {
    expect(() => buildPauseBinary('riscv64')).toThrow(/cannot build its pause image for architecture riscv64/);
  });
});

describe('pause image', () => {
  it('is a tar with just an executable /pause', () => {
    const tar = buildPauseImageTar('x64');
    expect(tar.subarray(0, 5).toString()).toBe('pause');
    expect(readOctal(tar, 100, 8)).toBe(0o755);
    expect(readOctal(tar, 124, 12)).toBe(buildPauseBinary('x64').length);
  });

  it('names and import changes', () => {
    expect(pauseImportOptions('berth.local/pause:3.9')).toEqual({
      repo: 'berth.local/pause',
      tag: '3.9',
      changes: ['ENTRYPOINT ["/pause"]', 'LABEL io.berth.managed-by=berth'],
    });
    expect(pauseImportOptions('localhost:5000/pause').tag).toBe('latest');
    expect(isLocalPauseImage('berth.local/pause:3.9')).toBe(true);
    expect(isLocalPauseImage('berth.local/pause:test')).toBe(true);
    expect(isLocalPauseImage('registry.k8s.io/pause:3.9')).toBe(false);
  });
});

describe('buildTar', () => {
  it('writes valid ustar headers with correct checksums', () => {
    const h = buildTarHeader({ type: 'file', path: 'bin/busybox', data: Buffer.alloc(1000), mode: 0o755 }, 0);
    expect(h.length).toBe(512);
    expect(h.subarray(257, 263).toString('latin1')).toBe('ustar\0');
    const stored = readOctal(h, 148, 8);
    const copy = Buffer.from(h);
    copy.fill(0x20, 148, 156);
    expect(stored).toBe(copy.reduce((a, b) => a + b, 0));
    expect(h[156]).toBe('0'.charCodeAt(0));
  });

  it('pads file data to blocks and ends with two zero blocks', () => {
    const tar = buildTar([
      { type: 'dir', path: 'bin' },
      { type: 'file', path: 'bin/x', data: Buffer.from('hello') },
      { type: 'symlink', path: 'bin/y', target: 'x' },
    ]);
    expect(tar.length).toBe(512 /* dir */ + 512 + 512 /* file + data */ + 512 /* link */ + 1024);
    expect(tar.subarray(0, 4).toString()).toBe('bin/');
    expect(tar[512 + 156]).toBe('0'.charCodeAt(0));
    expect(tar.subarray(1024, 1029).toString()).toBe('hello');
    expect(tar[1536 + 156]).toBe('2'.charCodeAt(0));
    expect(tar.subarray(1536 + 157, 1536 + 158).toString()).toBe('x');
    expect(tar.subarray(tar.length - 1024).every((b) => b === 0)).toBe(true);
  });

  it('splits long paths into prefix and name', () => {
    const long = `${'d'.repeat(120)}/file`;
    const h = buildTarHeader({ type: 'file', path: long, data: Buffer.alloc(0) }, 0);
    expect(h.subarray(0, 4).toString()).toBe('file');
    expect(h.subarray(345, 465).toString()).toBe('d'.repeat(120));
  });
});

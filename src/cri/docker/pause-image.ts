// The pod sandbox ("pause") image. The upstream image cannot be pulled on an offline node, so berth makes its
// own on first use: `docker import` of a tar holding one static binary, /pause, generated here as a tiny
// hand-assembled ELF64 executable (x86_64 and aarch64). It does what kubernetes' build/pause/linux/pause.c does:
//   1. SIGCHLD -> SIG_IGN with SA_NOCLDWAIT: the kernel reaps children re-parented to it (zombies never stay);
//   2. SIGTERM and SIGINT -> a handler calling exit_group(0), so `docker stop` ends it at once with code 0
//      (as PID 1 of its namespace, a signal without a handler would be ignored until the SIGKILL);
//   3. loop on pause() (ppoll(NULL, 0, NULL, NULL) on aarch64, which has no pause syscall).
// x86_64 refuses to deliver a handled signal unless SA_RESTORER is set (arch/x86/kernel/signal_64.c: "x86-64
// should always use SA_RESTORER", else the frame setup fails and the process gets SIGSEGV), even when the
// handler never returns, so both handlers carry SA_RESTORER and a restorer stub calling rt_sigreturn.
// See docs/pause-image.md.
import type Dockerode from 'dockerode';
import { buildTar } from './tar.ts';

export const PAUSE_IMAGE = 'berth.local/pause:3.9';
const LOCAL_PAUSE_REPO = 'berth.local/pause';

/** Whether `ref` names berth's locally built pause image (any tag of berth.local/pause). */
export function isLocalPauseImage(ref: string): boolean {
  return ref === LOCAL_PAUSE_REPO || ref.startsWith(LOCAL_PAUSE_REPO + ':');
}

export type PauseArch = 'x64' | 'arm64';

const BASE = 0x400000;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PHNUM = 2; // PT_LOAD (code + data) and PT_GNU_STACK (non-executable stack)
const CODE_OFFSET = EHDR_SIZE + PHDR_SIZE * PHNUM;

const SIGINT = 2;
const SIGTERM = 15;
const SIGCHLD = 17;
const SIG_IGN = 1n;
const SA_NOCLDWAIT = 0x2n;
const SA_RESTORER = 0x04000000n;
const SIGSET_BYTES = 8;

interface Layout {
  /** Virtual addresses of the two kernel `struct sigaction`s. */
  actChild: number;
  actExit: number;
}

interface Program {
  code: Buffer;
  handler: number;
  restorer: number;
}

type Assembler = (codeAddr: number, layout: Layout) => Program;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

// x86_64: every instruction used has a fixed length, so labels are known after one pass with dummy addresses.
const assembleX64: Assembler = (codeAddr, layout) => {
  const out: Buffer[] = [];
  let size = 0;
  const emit = (...bs: (number[] | Buffer)[]): void => {
    for (const b of bs) {
      const buf = Buffer.isBuffer(b) ? b : Buffer.from(b);
      out.push(buf);
      size += buf.length;
    }
  };
  const sigaction = (sig: number, act: number): void => {
    emit([0xb8], u32(13)); // mov eax, SYS_rt_sigaction
    emit([0xbf], u32(sig)); // mov edi, sig
    emit([0xbe], u32(act)); // mov esi, act (absolute: the image is loaded at BASE, below 4 GiB)
    emit([0x31, 0xd2]); // xor edx, edx        (oldact = NULL)
    emit([0x41, 0xba], u32(SIGSET_BYTES)); // mov r10d, 8
    emit([0x0f, 0x05]); // syscall
  };
  sigaction(SIGCHLD, layout.actChild);
  sigaction(SIGTERM, layout.actExit);
  sigaction(SIGINT, layout.actExit);
  const loop = size;
  emit([0xb8], u32(34)); // mov eax, SYS_pause
  emit([0x0f, 0x05]); // syscall
  emit([0xeb, (loop - (size + 2)) & 0xff]); // jmp loop
  const handler = codeAddr + size;
  emit([0xb8], u32(231)); // mov eax, SYS_exit_group
  emit([0x31, 0xff]); // xor edi, edi
  emit([0x0f, 0x05]); // syscall
  const restorer = codeAddr + size;
  emit([0xb8], u32(15)); // mov eax, SYS_rt_sigreturn
  emit([0x0f, 0x05]); // syscall
  return { code: Buffer.concat(out), handler, restorer };
};

// aarch64: fixed 4-byte instructions.
const assembleArm64: Assembler = (codeAddr, layout) => {
  const words: number[] = [];
  const pc = (): number => codeAddr + words.length * 4;
  const movz = (rd: number, imm: number): void => void words.push((0xd2800000 | (imm << 5) | rd) >>> 0);
  const svc0 = (): void => void words.push(0xd4000001);
  const adr = (rd: number, target: number): void => {
    const off = target - pc();
    words.push((0x10000000 | ((off & 3) << 29) | (((off >> 2) & 0x7ffff) << 5) | rd) >>> 0);
  };
  const b = (target: number): void => void words.push((0x14000000 | (((target - pc()) >> 2) & 0x3ffffff)) >>> 0);
  const sigaction = (sig: number, act: number): void => {
    movz(8, 134); // x8 = SYS_rt_sigaction
    movz(0, sig);
    adr(1, act);
    movz(2, 0); // oldact = NULL
    movz(3, SIGSET_BYTES);
    svc0();
  };
  sigaction(SIGCHLD, layout.actChild);
  sigaction(SIGTERM, layout.actExit);
  sigaction(SIGINT, layout.actExit);
  const loop = pc();
  movz(8, 73); // SYS_ppoll(NULL, 0, NULL, NULL): sleeps until a signal, like glibc's pause()
  movz(0, 0);
  movz(1, 0);
  movz(2, 0);
  movz(3, 0);
  svc0();
  b(loop);
  const handler = pc();
  movz(8, 94); // SYS_exit_group
  movz(0, 0);
  svc0();
  const restorer = pc();
  movz(8, 139); // SYS_rt_sigreturn
  svc0();
  const code = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => code.writeUInt32LE(w, i * 4));
  return { code, handler, restorer };
};

const ARCHES: Record<PauseArch, { machine: number; align: number; assemble: Assembler }> = {
  x64: { machine: 62, align: 0x1000, assemble: assembleX64 }, // EM_X86_64
  arm64: { machine: 183, align: 0x10000, assemble: assembleArm64 }, // EM_AARCH64
};

/** Kernel `struct sigaction` (x86_64 and arm64 share it): handler, flags, restorer, 64-bit mask. */
function sigactionStruct(handler: bigint, flags: bigint, restorer: bigint): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(handler, 0);
  b.writeBigUInt64LE(flags, 8);
  b.writeBigUInt64LE(restorer, 16);
  b.writeBigUInt64LE(0n, 24);
  return b;
}

export function isPauseArch(arch: string): arch is PauseArch {
  return arch === 'x64' || arch === 'arm64';
}

/** The /pause executable for `arch` (Node's process.arch names). Throws for architectures berth cannot build. */
export function buildPauseBinary(arch: string = process.arch): Buffer {
  if (!isPauseArch(arch)) {
    throw new Error(
      `berth cannot build its pause image for architecture ${arch} (supported: x64, arm64); ` +
        `load a pause image yourself and pass it as the pod infra image`,
    );
  }
  const a = ARCHES[arch];
  const codeAddr = BASE + CODE_OFFSET;
  // Instruction lengths do not depend on addresses: one pass to size the code, one with the data addresses.
  const codeLen = a.assemble(codeAddr, { actChild: BASE, actExit: BASE }).code.length;
  const dataOffset = Math.ceil((CODE_OFFSET + codeLen) / 8) * 8;
  const prog = a.assemble(codeAddr, { actChild: BASE + dataOffset, actExit: BASE + dataOffset + 32 });
  const data = Buffer.concat([
    sigactionStruct(SIG_IGN, SA_NOCLDWAIT | SA_RESTORER, BigInt(prog.restorer)),
    sigactionStruct(BigInt(prog.handler), SA_RESTORER, BigInt(prog.restorer)),
  ]);
  const fileSize = dataOffset + data.length;

  const ehdr = Buffer.alloc(EHDR_SIZE);
  ehdr.set([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* LSB */, 1 /* EV_CURRENT */, 0 /* SYSV ABI */], 0);
  ehdr.writeUInt16LE(2, 16); // ET_EXEC
  ehdr.writeUInt16LE(a.machine, 18);
  ehdr.writeUInt32LE(1, 20); // e_version
  ehdr.writeBigUInt64LE(BigInt(codeAddr), 24); // e_entry
  ehdr.writeBigUInt64LE(BigInt(EHDR_SIZE), 32); // e_phoff
  ehdr.writeBigUInt64LE(0n, 40); // e_shoff: no section headers
  ehdr.writeUInt32LE(0, 48); // e_flags
  ehdr.writeUInt16LE(EHDR_SIZE, 52);
  ehdr.writeUInt16LE(PHDR_SIZE, 54);
  ehdr.writeUInt16LE(PHNUM, 56);
  ehdr.writeUInt16LE(0, 58); // e_shentsize
  ehdr.writeUInt16LE(0, 60); // e_shnum
  ehdr.writeUInt16LE(0, 62); // e_shstrndx

  const load = Buffer.alloc(PHDR_SIZE);
  load.writeUInt32LE(1, 0); // PT_LOAD
  load.writeUInt32LE(5, 4); // PF_R | PF_X (the sigaction structs are only read by the kernel)
  load.writeBigUInt64LE(0n, 8); // p_offset
  load.writeBigUInt64LE(BigInt(BASE), 16); // p_vaddr
  load.writeBigUInt64LE(BigInt(BASE), 24); // p_paddr
  load.writeBigUInt64LE(BigInt(fileSize), 32); // p_filesz
  load.writeBigUInt64LE(BigInt(fileSize), 40); // p_memsz
  load.writeBigUInt64LE(BigInt(a.align), 48);

  const stack = Buffer.alloc(PHDR_SIZE);
  stack.writeUInt32LE(0x6474e551, 0); // PT_GNU_STACK
  stack.writeUInt32LE(6, 4); // PF_R | PF_W
  stack.writeBigUInt64LE(16n, 48);

  const out = Buffer.alloc(fileSize);
  Buffer.concat([ehdr, load, stack]).copy(out, 0);
  prog.code.copy(out, CODE_OFFSET);
  data.copy(out, dataOffset);
  return out;
}

/** The root filesystem of the pause image: just /pause. */
export function buildPauseImageTar(arch: string = process.arch): Buffer {
  return buildTar([{ type: 'file', path: 'pause', data: buildPauseBinary(arch), mode: 0o755 }]);
}

/** `docker import` options that make the tar a runnable image named `ref`. */
export function pauseImportOptions(ref: string): { repo: string; tag: string; changes: string[] } {
  const at = ref.lastIndexOf(':');
  const slash = ref.lastIndexOf('/');
  const hasTag = at > slash;
  return {
    repo: hasTag ? ref.slice(0, at) : ref,
    tag: hasTag ? ref.slice(at + 1) : 'latest',
    changes: ['ENTRYPOINT ["/pause"]', 'LABEL io.berth.managed-by=berth'],
  };
}

/**
 * Imports berth's pause image as `ref` from the generated tar. The caller checks first that it is absent.
 * Resolves when the import stream has ended; throws with the engine's message when it reports an error.
 */
export async function importPauseImage(docker: Dockerode, ref: string, signal: AbortSignal): Promise<void> {
  const opts = { ...pauseImportOptions(ref), abortSignal: signal };
  const stream = (await docker.importImage(buildPauseImageTar() as unknown as NodeJS.ReadableStream, opts)) as NodeJS.ReadableStream;
  await followJsonStream(stream);
}

/**
 * Reads a Docker JSON-lines progress stream to its end; rejects with the first `error` message it carries.
 * Shared by import, build and pull.
 */
export function followJsonStream(stream: NodeJS.ReadableStream, onMessage?: (m: Record<string, unknown>) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let failed: Error | undefined;
    const onLine = (line: string): void => {
      const text = line.trim();
      if (!text) return;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      onMessage?.(msg);
      if (failed) return;
      const detail = msg['errorDetail'] as { message?: unknown } | undefined;
      const error = msg['error'] ?? detail?.message;
      if (error !== undefined && error !== null && error !== '') failed = new Error(String(error));
    };
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    let ended = false;
    stream.on('error', (err: unknown) => reject(err));
    stream.on('end', () => {
      ended = true;
      onLine(buf);
      if (failed) reject(failed);
      else resolve();
    });
    stream.on('close', () => {
      if (!ended) reject(failed ?? new Error('docker stream closed before its end'));
    });
  });
}

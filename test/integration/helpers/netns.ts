// Throwaway network namespaces for proxy integration tests and benchmarks. Everything runs inside namespaces
// named berth-t-<tag>-<random> that this helper creates and deletes; the host's own tables are never touched.
// Traffic goes only between these namespaces, and every traffic generator is bounded in count and time.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type RunResult } from '../../../src/proxy/exec.ts';

export async function sh(argv: string[], timeoutMs = 20_000): Promise<RunResult> {
  const r = await runCommand(argv, { timeoutMs });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

const created = new Set<Netns>();

/** Destroys every namespace this process created and has not destroyed yet (afterAll, even after a failed setup). */
export async function destroyAll(): Promise<void> {
  for (const ns of [...created]) await ns.destroy();
}

export class Netns {
  readonly name: string;
  private readonly children: ChildProcess[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates berth-t-<tag>-<random> with loopback up. */
  static async create(tag: string): Promise<Netns> {
    const name = `berth-t-${tag}-${randomBytes(3).toString('hex')}`;
    await sh(['ip', 'netns', 'add', name]);
    const ns = new Netns(name);
    created.add(ns);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip -n <ns> …` */
  ip(...args: string[]): Promise<RunResult> {
    return sh(['ip', '-n', this.name, ...args]);
  }

  /** Runs a command inside the namespace; rejects on non-zero exit. */
  exec(argv: string[], timeoutMs = 20_000): Promise<RunResult> {
    return sh(['ip', 'netns', 'exec', this.name, ...argv], timeoutMs);
  }

  /** Runs a command inside the namespace, resolving with its result whatever the exit code. */
  tryExec(argv: string[], timeoutMs = 20_000): Promise<RunResult> {
    return runCommand(['ip', 'netns', 'exec', this.name, ...argv], { timeoutMs });
  }

  /** Starts a long-running process in the namespace; resolves once it printed `readyLine`. Killed by destroy(). */
  async start(argv: string[], readyLine = 'ready', timeoutMs = 10_000): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      let err = '';
      const t = setTimeout(() => reject(new Error(`${argv.join(' ')} not ready: ${err}`)), timeoutMs);
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes(readyLine)) {
          clearTimeout(t);
          resolve();
        }
      });
      child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      child.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
      });
    });
    return child;
  }

  async destroy(): Promise<void> {
    created.delete(this);
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    await runCommand(['ip', 'netns', 'del', this.name], { timeoutMs: 20_000 }).catch(() => undefined);
  }
}

/** A veth pair between two namespaces, each end with an address, both up. */
export async function link(a: Netns, aIf: string, aAddr: string, b: Netns, bIf: string, bAddr: string): Promise<void> {
  await a.ip('link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name);
  await a.ip('addr', 'add', aAddr, 'dev', aIf);
  await b.ip('addr', 'add', bAddr, 'dev', bIf);
  await a.ip('link', 'set', aIf, 'up');
  await b.ip('link', 'set', bIf, 'up');
}

// An endpoint: listens on every given ip (TCP and UDP, same port each) and answers "<its ip>:<port> <peer ip>".
const SERVER = `
const net = require('node:net'); const dgram = require('node:dgram');
const [tcpPort, udpPort, ...ips] = process.argv.slice(2);
let pending = ips.length * 2;
const done = () => { if (--pending === 0) console.log('ready'); };
for (const ip of ips) {
  net.createServer((s) => { s.on('error', () => {}); s.end(ip + ':' + tcpPort + ' ' + s.remoteAddress + '\\n'); }).listen(+tcpPort, ip, done);
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(ip + ':' + udpPort + ' ' + r.address + '\\n', r.port, r.address));
  u.bind(+udpPort, ip, done);
}
`;

// The traffic generator: `count` connections (TCP) or datagram exchanges (UDP, fresh socket each) to target, at
// most `conc` at a time, each with its own timeout, all within `deadline` ms. Prints a JSON summary.
const CLIENT = `
const net = require('node:net'); const dgram = require('node:dgram');
const [proto, host, port, count, conc, perTimeout, deadline, bind] = process.argv.slice(2);
const [bindAddr, bindPort] = (bind || '').split(',');
const started = Date.now(); const res = { answers: {}, peers: {}, errors: {}, firstErrorMs: undefined, elapsedMs: 0 };
const record = (line) => { const [who, peer] = line.trim().split(' '); res.answers[who] = (res.answers[who] || 0) + 1; res.peers[peer] = (res.peers[peer] || 0) + 1; };
const fail = (code) => { res.errors[code] = (res.errors[code] || 0) + 1; if (res.firstErrorMs === undefined) res.firstErrorMs = Date.now() - t0; };
let t0 = Date.now();
function one() {
  return new Promise((resolve) => {
    t0 = Date.now();
    if (proto === 'udp') {
      const s = dgram.createSocket('udp4'); let done = false;
      const fin = (f) => { if (done) return; done = true; clearTimeout(t); try { s.close(); } catch {} f(); resolve(); };
      const t = setTimeout(() => fin(() => fail('TIMEOUT')), +perTimeout);
      s.on('message', (m) => fin(() => record(m.toString())));
      s.on('error', (e) => fin(() => fail(e.code || 'ERR')));
      const go = () => s.send('x', +port, host);
      if (bindPort) s.bind(+bindPort, bindAddr || undefined, go); else go();
      return;
    }
    const s = net.connect({ host, port: +port, ...(bindAddr ? { localAddress: bindAddr } : {}), ...(bindPort ? { localPort: +bindPort } : {}) }); let buf = ''; let done = false;
    const fin = (f) => { if (done) return; done = true; clearTimeout(t); s.destroy(); f(); resolve(); };
    const t = setTimeout(() => fin(() => fail('TIMEOUT')), +perTimeout);
    s.on('data', (d) => { buf += d; });
    s.on('end', () => fin(() => buf ? record(buf) : fail('EMPTY')));
    s.on('error', (e) => fin(() => fail(e.code || 'ERR')));
  });
}
(async () => {
  let next = 0;
  const worker = async () => { while (next < +count && Date.now() - started < +deadline) { next++; await one(); } };
  await Promise.all(Array.from({ length: Math.max(1, +conc) }, worker));
  res.elapsedMs = Date.now() - started;
  console.log(JSON.stringify(res));
})();
`;

let scriptDir: string | undefined;
async function scripts(): Promise<{ server: string; client: string }> {
  if (!scriptDir) {
    scriptDir = await mkdtemp(join(tmpdir(), 'berth-t-'));
    await writeFile(join(scriptDir, 'server.cjs'), SERVER);
    await writeFile(join(scriptDir, 'client.cjs'), CLIENT);
  }
  return { server: join(scriptDir, 'server.cjs'), client: join(scriptDir, 'client.cjs') };
}

export async function removeScripts(): Promise<void> {
  if (scriptDir) await rm(scriptDir, { recursive: true, force: true });
  scriptDir = undefined;
}

/** Starts identity servers for `ips` in `ns`. */
export async function startEndpoints(ns: Netns, ips: string[], tcpPort: number, udpPort: number): Promise<void> {
  const { server } = await scripts();
  await ns.start([process.execPath, server, String(tcpPort), String(udpPort), ...ips]);
}

export interface TrafficResult {
  /** "ip:port" of the endpoint that answered → count. */
  answers: Record<string, number>;
  /** Source address the endpoint saw → count. */
  peers: Record<string, number>;
  /** Error code (ECONNREFUSED, TIMEOUT, …) → count. */
  errors: Record<string, number>;
  /** How long the first failing attempt took. */
  firstErrorMs: number | undefined;
  elapsedMs: number;
}

export interface TrafficOptions {
  proto?: 'tcp' | 'udp';
  count: number;
  concurrency?: number;
  perTimeoutMs?: number;
  deadlineMs?: number;
  /** Local address to send from. */
  bind?: string;
  /** Fixed local port (UDP: the same 5-tuple every time, to exercise conntrack). */
  bindPort?: number;
}

/** Bounded traffic from `ns` to host:port. */
export async function traffic(ns: Netns, host: string, port: number, o: TrafficOptions): Promise<TrafficResult> {
  const { client } = await scripts();
  const deadline = o.deadlineMs ?? 20_000;
  const r = await ns.exec(
    [
      process.execPath,
      client,
      o.proto ?? 'tcp',
      host,
      String(port),
      String(o.count),
      String(o.concurrency ?? 1),
      String(o.perTimeoutMs ?? 2000),
      String(deadline),
      `${o.bind ?? ''},${o.bindPort ?? ''}`,
    ],
    deadline + 10_000,
  );
  return JSON.parse(r.stdout) as TrafficResult;
}

/** Pearson's chi-square statistic of `counts` against a uniform split of their sum over `k` cells. */
export function chiSquareUniform(counts: number[], k: number): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / k;
  const cells = [...counts, ...new Array<number>(Math.max(0, k - counts.length)).fill(0)];
  return cells.reduce((s, o) => s + (o - expected) ** 2 / expected, 0);
}

/** Critical values at p = 0.001 for 1…6 degrees of freedom. */
export const CHI2_CRIT_P001 = [0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458];

/** iptables-save of the namespace with comments and counters normalised (for before/after comparisons). */
export async function saveNormalized(ns: Netns, backend: 'legacy' | 'nft'): Promise<string> {
  const r = await ns.exec([`iptables-${backend}-save`]);
  return r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n');
}

// bench/proxy: the service proxy at 1k / 5k / 10k Services × 2 endpoints, per iptables backend, each size in a
// fresh throwaway network namespace (addresses are only written into rules; no traffic):
//   generation        building the rules and the full restore text (pure, no iptables), cold and warm
//   fullSync          the first sync on an empty node: informer state → kernel
//   fullResync        a full (reconciling) sync when nothing changed: iptables-save + compare, nothing written
//   addService / changeEndpoint / deleteService
//                     one change with N Services present, end to end: from the ProxyEventHandler call (what an
//                     informer calls) through the rate-limited sync loop to iptables-restore completion
// Usage: node bench/proxy.ts [--sizes 1000,5000,10000] [--modes iptables,nftables] [--backends legacy,nft]
//          [--changes 5] [--generation-only] [--no-generation] [--no-resync] [--netns NAME]  → JSON on stdout.
//   --modes       iptables (per --backends), nftables (berth's `ip kube-proxy` table written through netlink, the
//                 default transport) and/or nftables-nft (the same table written through `nft -f -`, for
//                 comparison); nftables results also carry the floors measured in the same namespace at that table
//                 size: an empty `nft -f -` transaction (process start + cache), a one-element transaction, and for
//                 netlink a one-element batch round trip and a generation read through berth's helper.
//   --netns NAME  run the scenarios in network namespace NAME (created when missing) and keep it afterwards; a
//                 second run against it finds the rules in place, so its first sync is a reconciling no-op
//                 instead of the ≈100 s nft fresh load (one size and one backend per namespace).
import { cpus, release } from 'node:os';
import { silentLogger } from '../src/lib/index.ts';
import {
  ServiceProxy,
  createIptablesExecutor,
  resolveProxyConfig,
  type IptablesExecutor,
  type SyncReport,
} from '../src/proxy/index.ts';
import { runCommand } from '../src/proxy/exec.ts';
import { formatIPv4 } from '../src/proxy/ip.ts';
import { Netns, destroyAll, sh } from '../test/integration/helpers/netns.ts';
import { NftablesProxy } from '../src/proxy/nftables/proxier.ts';
import { CommandNftExecutor } from '../src/proxy/nftables/executor.ts';
import { NetlinkTransport } from '../src/proxy/nftables/netlink/transport.ts';
import { NftNetlink } from '../src/proxy/nftables/netlink/client.ts';
import { service, slice } from '../test/unit/proxy-fixtures.ts';

const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const sizes = opt('sizes', '1000,5000,10000').split(',').map(Number);
const backends = opt('backends', 'legacy,nft').split(',') as ('legacy' | 'nft')[];
type Mode = 'iptables' | 'nftables' | 'nftables-nft';
const modes = opt('modes', 'iptables').split(',') as Mode[];
const changes = Number(opt('changes', '5'));
const generationOnly = args.includes('--generation-only');
const noGeneration = args.includes('--no-generation');
const keepNetns = opt('netns', '');
/** Skip the reconciling full resync (at 44k Services listing the nftables table alone takes minutes). */
const noResync = args.includes('--no-resync');

const log = (msg: string): void => void process.stderr.write(`[bench/proxy] ${msg}\n`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const SVC_BASE = 0x0a600000; // 10.96.0.0
const EP_BASE = 0x0a800000; // 10.128.0.0
const svcIP = (i: number): string => formatIPv4(SVC_BASE + i + 1);
const epIP = (i: number, j: number): string => formatIPv4(EP_BASE + 2 * i + j + 1);
const mkService = (i: number) => service('bench', `svc-${i}`, { clusterIP: svcIP(i), ports: [{ name: 'http', port: 80 }] });
const mkSlice = (i: number, ips: string[]) =>
  slice('bench', `svc-${i}`, `svc-${i}-abcde`, [{ name: 'http', port: 8080 }], ips.map((ip, j) => ({ ip, node: j === 0 ? 'bench-node' : 'other' })));

const config = resolveProxyConfig({
  clusterCIDR: '10.128.0.0/9',
  // Production rate limit (1 s, burst 2); the periodic sync is pushed out so it cannot land inside a measurement.
  minSyncPeriodMs: 1000,
  burstSyncs: 2,
  syncPeriodMs: 3_600_000,
  restoreTimeoutMs: 900_000,
});

function feed(proxy: ServiceProxy | NftablesProxy, n: number): void {
  for (let i = 0; i < n; i++) {
    proxy.onServiceAdd(mkService(i));
    proxy.onEndpointSliceAdd(mkSlice(i, [epIP(i, 0), epIP(i, 1)]));
  }
  proxy.onServicesSynced();
  proxy.onEndpointSlicesSynced();
}

/**
 * Pure generation: the proxy against an executor that reports an empty kernel and discards the text. Cold = a new
 * proxy (chain names not memoised yet); warm = a second full build in the same proxy. Median and min of `rounds`,
 * because wall time on a shared machine is noisy.
 */
async function generation(n: number, rounds: number): Promise<Record<string, number>> {
  let bytes = 0;
  let lines = 0;
  const nullExecutor: IptablesExecutor = {
    backend: 'nft',
    restore: (text) => {
      bytes = text.length;
      lines = text.split('\n').length - 1;
      return Promise.resolve();
    },
    save: () => Promise.resolve(''),
    chainExists: () => Promise.resolve(true),
    version: () => Promise.resolve('iptables v1.8.9'),
  };
  const cold: number[] = [];
  const warm: number[] = [];
  const track: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const proxy = new ServiceProxy({ config, node: { name: 'bench-node', ip: '10.0.0.1' }, executor: nullExecutor, log: silentLogger });
    const t0 = performance.now();
    feed(proxy, n);
    track.push(performance.now() - t0);
    cold.push((await proxy.syncNow()).buildMs);
    (proxy as unknown as { needFullSync: boolean }).needFullSync = true;
    warm.push((await proxy.syncNow()).buildMs);
  }
  return {
    rounds,
    trackMsMedian: round(median(track)),
    coldMsMedian: round(median(cold)),
    coldMsMin: round(Math.min(...cold)),
    warmMsMedian: round(median(warm)),
    warmMsMin: round(Math.min(...warm)),
    restoreLines: lines,
    restoreBytes: bytes,
  };
}

interface ChangeStats {
  endToEndMsMedian: number;
  endToEndMsMax: number;
  restoreMsMedian: number;
  restoreBytes: number;
  kinds: string[];
}

/** The floor in the same namespace at the same table size: `nft -f -` with nothing to do, and with one element. */
async function nftFloor(netns: string, rounds = 9): Promise<Record<string, number>> {
  const ex = new CommandNftExecutor({ netns });
  const time = async (text: string): Promise<number> => {
    const t0 = performance.now();
    await ex.apply(text);
    return performance.now() - t0;
  };
  const empty: number[] = [];
  const oneElement: number[] = [];
  const oneChain: number[] = [];
  for (let i = 0; i < rounds; i++) {
    empty.push(await time(''));
    oneElement.push(await time('add element ip kube-proxy cluster-ips { 10.95.255.254 }\n'));
    await time('delete element ip kube-proxy cluster-ips { 10.95.255.254 }\n');
    oneChain.push(await time('add chain ip kube-proxy bench-floor\nadd rule ip kube-proxy bench-floor meta l4proto tcp dnat to 10.0.0.1:80\n'));
    await time('delete chain ip kube-proxy bench-floor\n');
  }
  // Listing builds nft's full cache (every anonymous set with its elements): minutes at 44k, so bounded here.
  const lister = new CommandNftExecutor({ netns, commandTimeoutMs: 120_000 });
  const t0 = performance.now();
  const listing = await lister.listTable().catch(() => undefined);
  const listMs = listing === undefined ? -1 : performance.now() - t0;
  const tc = performance.now();
  const canary = await ex.canaryPresent();
  const canaryMs = performance.now() - tc;
  const startOnly: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t1 = performance.now();
    await runCommand(['nsenter', `--net=/run/netns/${netns}`, '--', 'nft', '--version'], { timeoutMs: 10_000 });
    startOnly.push(performance.now() - t1);
  }
  return {
    processStartMsMedian: round(median(startOnly)),
    emptyTransactionMsMedian: round(median(empty)),
    oneElementMsMedian: round(median(oneElement)),
    oneChainMsMedian: round(median(oneChain)),
    listTableMs: round(listMs),
    listTableBytes: listing?.length ?? -1,
    canaryCheckMs: round(canaryMs),
    canaryPresent: canary ? 1 : 0,
  };
}

/**
 * The netlink floors in the same namespace at the same table size, through the same helper process berth uses: a
 * one-chain-one-jump-rule batch (what the kernel's table validation alone costs), a one-element batch (add, then
 * delete: no validation), a generation read (GETGEN) and the canary (GETCHAIN) round trips.
 */
async function netlinkFloor(netns: string, rounds = 21): Promise<Record<string, number>> {
  const transport = new NetlinkTransport({ netns });
  const nl = new NftNetlink(transport);
  const el = [{ set: 'cluster-ips', key: '10.95.255.254', value: '' }];
  const one: number[] = [];
  const rule: number[] = [];
  const gen: number[] = [];
  const canary: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // A chain with one jump rule: the kernel validates the whole table on commit (every chain reachable from the
      // base chains) once a transaction adds a rule or map element with a jump, goto or nat — the floor of any
      // change that writes rules, growing with the table.
      const add = nl.newBatch();
      add.addChain('bench-floor');
      add.addRule('bench-floor', 'jump mark-for-masquerade');
      const t1 = performance.now();
      await nl.commit(add.finish()!);
      rule.push(performance.now() - t1);
      const del = nl.newBatch();
      del.flushChain('bench-floor');
      del.deleteChain('bench-floor');
      await nl.commit(del.finish()!);
    }
    for (let i = 0; i < rounds; i++) {
      const add = nl.newBatch();
      add.elements(true, el);
      let t0 = performance.now();
      await nl.commit(add.finish()!);
      one.push(performance.now() - t0);
      const del = nl.newBatch();
      del.elements(false, el);
      await nl.commit(del.finish()!);
      t0 = performance.now();
      await nl.generation();
      gen.push(performance.now() - t0);
      t0 = performance.now();
      await nl.chainExists('services');
      canary.push(performance.now() - t0);
    }
  } finally {
    transport.close();
  }
  return {
    oneRuleBatchMsMedian: round2(median(rule)),
    oneRuleBatchMsMax: round2(Math.max(...rule)),
    oneElementBatchMsMedian: round2(median(one)),
    oneElementBatchMsMax: round2(Math.max(...one)),
    generationReadMsMedian: round2(median(gen)),
    canaryCheckMsMedian: round2(median(canary)),
  };
}

async function scenario(mode: Mode, backend: 'legacy' | 'nft', n: number): Promise<Record<string, unknown>> {
  let reused = false;
  let ns: { name: string; destroy(): Promise<void> };
  if (keepNetns) {
    reused = (await sh(['ip', 'netns', 'list'])).stdout.split('\n').some((l) => l.split(' ')[0] === keepNetns);
    if (!reused) {
      await sh(['ip', 'netns', 'add', keepNetns]);
      await sh(['ip', '-n', keepNetns, 'link', 'set', 'lo', 'up']);
    }
    ns = { name: keepNetns, destroy: () => Promise.resolve() };
  } else ns = await Netns.create('bench');
  try {
    type Report = Pick<SyncReport, 'kind' | 'durationMs' | 'buildMs' | 'saveMs' | 'restoreMs' | 'restoreBytes'>;
    let waiter: ((r: Report) => void) | undefined;
    const next = (): Promise<Report> => new Promise((resolve) => (waiter = resolve));
    const onSync = (r: Report): void => {
      const w = waiter;
      waiter = undefined;
      w?.(r);
    };
    const node = { name: 'bench-node', ip: '10.0.0.1' };
    const nft = mode !== 'iptables';
    const proxy = nft
      ? new NftablesProxy({ config, node, executor: new CommandNftExecutor({ netns: ns.name, transport: mode === 'nftables' ? 'netlink' : 'nft' }), log: silentLogger, onSync })
      : new ServiceProxy({ config, node, executor: await createIptablesExecutor({ backend, netns: ns.name, log: silentLogger }), log: silentLogger, onSync });
    const label = nft ? mode : `iptables-${backend}`;
    feed(proxy, n);
    log(`${label} ${n}: full sync${reused ? ` (reusing netns ${keepNetns}: rules already in place)` : ''}`);
    let t0 = performance.now();
    const fullDone = next();
    await proxy.start();
    const full = await fullDone;
    const fullWallMs = performance.now() - t0;
    const m = proxy.metrics();

    log(`${label} ${n}: full resync without changes`);
    (proxy as unknown as { needFullSync: boolean }).needFullSync = !noResync;
    const resync = await proxy.syncNow();
    await sleep(1100);
    const periodic = await proxy.syncNow(); // the syncPeriod tick with nothing pending

    const measure = async (what: string, act: (k: number) => void): Promise<ChangeStats> => {
      const e2e: number[] = [];
      const restore: number[] = [];
      const kinds: string[] = [];
      let bytes = 0;
      for (let k = 0; k < changes; k++) {
        await sleep(1100); // let the rate limiter refill, as between sparse real-world changes
        const done = next();
        const start = performance.now();
        act(k);
        const r = await done;
        e2e.push(performance.now() - start);
        restore.push(r.restoreMs);
        kinds.push(r.kind);
        bytes = r.restoreBytes;
      }
      log(`${label} ${n}: ${what} median ${round(median(e2e))} ms`);
      return { endToEndMsMedian: round(median(e2e)), endToEndMsMax: round(Math.max(...e2e)), restoreMsMedian: round(median(restore)), restoreBytes: bytes, kinds: [...new Set(kinds)] };
    };
    const addService = await measure('add service', (k) => {
      const i = n + k;
      proxy.onServiceAdd(mkService(i));
      proxy.onEndpointSliceAdd(mkSlice(i, [epIP(i, 0), epIP(i, 1)]));
    });
    const changeEndpoint = await measure('change endpoint', (k) => {
      const i = k * 7;
      proxy.onEndpointSliceUpdate(undefined, mkSlice(i, [epIP(i, 0), formatIPv4(0x0af00000 + k + 1)]));
    });
    const deleteService = await measure('delete service', (k) => proxy.onServiceDelete(mkService(n + k)));
    const transactions = proxy instanceof NftablesProxy ? proxy.transactionCounts : undefined;
    await proxy.stop();
    const floor = nft ? await nftFloor(ns.name).catch((err: unknown) => ({ error: String(err) })) : undefined;
    const netlink = mode === 'nftables' ? await netlinkFloor(ns.name).catch((err: unknown) => ({ error: String(err) })) : undefined;
    t0 = performance.now();
    return {
      mode,
      backend: nft ? mode : backend,
      ...(transactions ? { transactions } : {}),
      services: n,
      endpointsPerService: 2,
      ...(keepNetns ? { netns: keepNetns, reusedNetns: reused } : {}),
      rules: { nat: m.iptablesRulesTotal.nat, filter: m.iptablesRulesTotal.filter, natChains: m.natChainsTotal },
      fullSync: {
        wallMs: round(fullWallMs),
        syncMs: round(full.durationMs),
        buildMs: round(full.buildMs),
        saveMs: round(full.saveMs),
        restoreMs: round(full.restoreMs),
        restoreBytes: full.restoreBytes,
      },
      fullResync: {
        kind: resync.kind,
        syncMs: round(resync.durationMs),
        saveMs: round(resync.saveMs),
        buildMs: round(resync.buildMs),
        restoreMs: round(resync.restoreMs),
        restoreBytes: resync.restoreBytes,
      },
      periodicSync: { kind: periodic.kind, syncMs: round(periodic.durationMs), restoreBytes: periodic.restoreBytes },
      addService,
      changeEndpoint,
      deleteService,
      ...(floor || netlink ? { floor: { ...(floor ?? {}), ...(netlink ? { netlink } : {}) } } : {}),
    };
  } finally {
    await ns.destroy();
  }
}

async function main(): Promise<void> {
  const versions: Record<string, string> = {};
  if (modes.includes('iptables')) for (const b of backends) versions[b] = (await runCommand([`iptables-${b}`, '--version'], { timeoutMs: 10_000 })).stdout.trim();
  if (modes.some((m) => m !== 'iptables')) versions.nft = (await runCommand(['nft', '--version'], { timeoutMs: 10_000 })).stdout.trim();
  const out: Record<string, unknown> = {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version, iptables: versions },
    config: { sizes, modes, backends, changes, endpointsPerService: 2, minSyncPeriodMs: config.minSyncPeriodMs, burstSyncs: config.burstSyncs },
    generation: {} as Record<string, unknown>,
    results: [] as Record<string, unknown>[],
  };
  for (const n of noGeneration ? [] : sizes) {
    log(`generation ${n}`);
    (out.generation as Record<string, unknown>)[n] = await generation(n, 5);
  }
  if (!generationOnly) {
    for (const mode of modes) {
      for (const b of mode !== 'iptables' ? (['nft'] as const) : backends) {
        for (const n of sizes) (out.results as Record<string, unknown>[]).push(await scenario(mode, b, n));
      }
    }
  }

  const results = out.results as { backend: string; services: number; fullSync: { syncMs: number }; addService: ChangeStats; changeEndpoint: ChangeStats }[];
  const at = (b: string, n: number) => results.find((r) => r.backend === b && r.services === n);
  const big = Math.max(...sizes);
  const gen = (out.generation as Record<number, { coldMsMedian: number; coldMsMin: number }>)[big];
  out.targets = {
    [`generation_${big}_le_200ms`]: gen ? { medianMs: gen.coldMsMedian, minMs: gen.coldMsMin, ok: gen.coldMsMedian <= 200 } : undefined,
    [`legacy_full_sync_${big}_le_2s`]: at('legacy', big) ? { ms: at('legacy', big)!.fullSync.syncMs, ok: at('legacy', big)!.fullSync.syncMs <= 2000 } : undefined,
    ...Object.fromEntries(
      [...(modes.includes('iptables') ? backends : []), ...modes.filter((m) => m !== 'iptables')].map((b) => [
        `${b}_one_change_${big}_le_50ms`,
        at(b, big)
          ? {
              addServiceMs: at(b, big)!.addService.endToEndMsMedian,
              changeEndpointMs: at(b, big)!.changeEndpoint.endToEndMsMedian,
              ok: at(b, big)!.addService.endToEndMsMedian <= 50 && at(b, big)!.changeEndpoint.endToEndMsMedian <= 50,
            }
          : undefined,
      ]),
    ),
    ...(at('nftables', big)
      ? (() => {
          const r = at('nftables', big) as unknown as {
            fullSync: { syncMs: number };
            fullResync: { syncMs: number };
            addService: ChangeStats;
            changeEndpoint: ChangeStats;
            deleteService: ChangeStats;
          };
          const ch = [r.addService, r.changeEndpoint, r.deleteService];
          return {
            [`nftables_one_change_${big}_le_10ms_median_20ms_max`]: {
              medianMs: ch.map((c) => c.endToEndMsMedian),
              maxMs: ch.map((c) => c.endToEndMsMax),
              ok: ch.every((c) => c.endToEndMsMedian <= 10 && c.endToEndMsMax <= 20),
            },
            [`nftables_first_sync_${big}_le_${big > 10_000 ? 10 : 2}s`]: { ms: r.fullSync.syncMs, ok: r.fullSync.syncMs <= (big > 10_000 ? 10_000 : 2000) },
            [`nftables_full_resync_${big}_le_200ms`]: { ms: r.fullResync.syncMs, ok: r.fullResync.syncMs <= 200 },
          };
        })()
      : {}),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench/proxy failed: ${String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => destroyAll());

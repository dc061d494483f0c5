// Builders for Services / EndpointSlices / Endpoints used by the proxy tests, and FakeIptables: an in-memory
// iptables that applies iptables-restore --noflush input with the kernel's semantics for what berth writes
// (declare = create/flush, -A, -I n, -D exact rule, -X only when unreferenced, per-table atomic COMMIT).
// test/integration/proxy-contract.test.ts runs the same sequence against real iptables and compares.
import type { Endpoints, Service, ServiceSpec, ServiceStatus } from 'kubernetes-types/core/v1';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1';
import type { IptablesExecutor, IptablesBackend } from '../../src/proxy/executor.ts';
import { IptablesRestoreError } from '../../src/proxy/executor.ts';
import type { Table } from '../../src/proxy/rules.ts';
import { ruleTarget } from '../../src/proxy/iptables-save.ts';

export function service(
  ns: string,
  name: string,
  spec: Partial<ServiceSpec>,
  extra: { annotations?: Record<string, string>; status?: ServiceStatus } = {},
): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: ns, name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { type: 'ClusterIP', ...spec },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

export interface EP {
  ip: string;
  node?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  zone?: string;
  hints?: string[];
}

export function slice(
  ns: string,
  svcName: string,
  sliceName: string,
  ports: { name?: string; port: number; protocol?: string }[],
  endpoints: EP[],
): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: ns, name: sliceName, labels: { 'kubernetes.io/service-name': svcName } },
    addressType: 'IPv4',
    ports: ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      ...(e.node ? { nodeName: e.node } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.hints ? { hints: { forZones: e.hints.map((z) => ({ name: z })) } } : {}),
      conditions: {
        ready: e.ready ?? true,
        ...(e.serving !== undefined ? { serving: e.serving } : {}),
        ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
      },
    })),
  };
}

export function endpointsObject(ns: string, name: string, ports: { name?: string; port: number; protocol?: string }[], ready: EP[], notReady: EP[] = []): Endpoints {
  const addr = (e: EP) => ({ ip: e.ip, ...(e.node ? { nodeName: e.node } : {}) });
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { namespace: ns, name },
    subsets: [{ addresses: ready.map(addr), notReadyAddresses: notReady.map(addr), ports: ports.map((p) => ({ ...p, protocol: p.protocol ?? 'TCP' })) }],
  };
}

const BUILTIN: Record<string, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
};

type Tables = Map<string, Map<string, string[]>>;

function clone(t: Tables): Tables {
  return new Map([...t].map(([k, v]) => [k, new Map([...v].map(([c, l]) => [c, [...l]]))]));
}

/** In-memory iptables with restore semantics. `restores` records every input (tests assert on them). */
export class FakeIptables implements IptablesExecutor {
  readonly backend: IptablesBackend = 'nft';
  tables: Tables = new Map();
  restores: string[] = [];
  saves = 0;
  /** The next `failures` restores fail with this message (after being recorded). */
  failNext: string | undefined;
  failures = 1;

  restore(text: string): Promise<void> {
    this.restores.push(text);
    if (this.failNext) {
      const msg = this.failNext;
      if (--this.failures <= 0) {
        this.failNext = undefined;
        this.failures = 1;
      }
      return Promise.reject(new IptablesRestoreError(msg, { line: 1, context: [], stderr: msg }));
    }
    const lines = text.split('\n');
    let work: Tables = clone(this.tables);
    let table: Map<string, string[]> | undefined;
    let tableName = '';
    const fail = (i: number, why: string): Promise<void> =>
      Promise.reject(new IptablesRestoreError(`line ${i + 1}: ${why}`, { line: i + 1, context: [lines[i] ?? ''], stderr: why }));
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (!l || l.startsWith('#')) continue;
      if (l.startsWith('*')) {
        tableName = l.slice(1);
        if (!work.has(tableName)) work.set(tableName, new Map((BUILTIN[tableName] ?? []).map((c) => [c, []])));
        table = work.get(tableName);
        continue;
      }
      if (!table) return fail(i, 'no table');
      if (l === 'COMMIT') {
        this.tables = work;
        work = clone(this.tables);
        table = undefined;
        continue;
      }
      if (l.startsWith(':')) {
        table.set(l.slice(1, l.indexOf(' ')), []);
        continue;
      }
      const parts = l.split(' ');
      const op = parts[0];
      const chain = parts[1]!;
      if (op === '-X') {
        if (!table.has(chain)) return fail(i, `no chain ${chain}`);
        for (const [c, rules] of table) if (c !== chain && rules.some((r) => ruleTarget(r) === chain)) return fail(i, `chain ${chain} in use`);
        table.delete(chain);
        continue;
      }
      const rules = table.get(chain);
      if (!rules) return fail(i, `no chain ${chain}`);
      let rest: string;
      let pos = -1;
      if (op === '-I') {
        pos = Number(parts[2]) - 1;
        rest = parts.slice(3).join(' ');
      } else rest = parts.slice(2).join(' ');
      const canonical = `-A ${chain} ${rest}`;
      const target = ruleTarget(canonical);
      if (target && /^KUBE-/.test(target) && !table.has(target)) return fail(i, `no target ${target}`);
      if (op === '-A') rules.push(canonical);
      else if (op === '-I') rules.splice(pos, 0, canonical);
      else if (op === '-D') {
        const k = rules.indexOf(canonical);
        if (k < 0) return fail(i, `rule not found`);
        rules.splice(k, 1);
      } else return fail(i, `unknown ${op}`);
    }
    return Promise.resolve();
  }

  save(table?: Table): Promise<string> {
    this.saves++;
    const out: string[] = [];
    for (const [name, chains] of this.tables) {
      if (table && name !== table) continue;
      out.push(`*${name}`);
      for (const c of chains.keys()) out.push(`:${c} ${(BUILTIN[name] ?? []).includes(c) ? 'ACCEPT' : '-'} [0:0]`);
      for (const rules of chains.values()) out.push(...rules);
      out.push('COMMIT');
    }
    return Promise.resolve(out.join('\n') + '\n');
  }

  chainExists(table: Table, chain: string): Promise<boolean> {
    return Promise.resolve(this.tables.get(table)?.has(chain) ?? false);
  }

  version(): Promise<string> {
    return Promise.resolve('iptables v1.8.9 (nf_tables)');
  }

  /** Rules of one chain (test assertions). */
  chain(table: string, chain: string): string[] | undefined {
    return this.tables.get(table)?.get(chain);
  }
}

// Eviction thresholds: parsing --eviction-hard / --eviction-soft / --eviction-soft-grace-period /
// --eviction-minimum-reclaim (or the KubeletConfiguration maps evictionHard, evictionSoft, …) into typed
// thresholds, and the arithmetic that turns a threshold into a quantity for an observed capacity. Follows
// pkg/kubelet/eviction/helpers.go (ParseThresholdConfig, parseThresholdStatement, parsePercentage,
// parseGracePeriods, parseMinimumReclaims) and pkg/kubelet/eviction/api/types.go (GetThresholdQuantity).
import { parseQuantity } from '../pod/quantity.ts';

export const SIGNALS = [
  'memory.available',
  'nodefs.available',
  'nodefs.inodesFree',
  'imagefs.available',
  'imagefs.inodesFree',
  'pid.available',
] as const;
export type Signal = (typeof SIGNALS)[number];

/** The resource each signal reclaims (signalToResource): the word in "The node was low on resource: …". */
export const SIGNAL_RESOURCE: Record<Signal, 'memory' | 'ephemeral-storage' | 'inodes' | 'pids'> = {
  'memory.available': 'memory',
  'nodefs.available': 'ephemeral-storage',
  'nodefs.inodesFree': 'inodes',
  'imagefs.available': 'ephemeral-storage',
  'imagefs.inodesFree': 'inodes',
  'pid.available': 'pids',
};

export type NodeConditionType = 'MemoryPressure' | 'DiskPressure' | 'PIDPressure';

/** signalToNodeCondition. */
export const SIGNAL_CONDITION: Record<Signal, NodeConditionType> = {
  'memory.available': 'MemoryPressure',
  'nodefs.available': 'DiskPressure',
  'nodefs.inodesFree': 'DiskPressure',
  'imagefs.available': 'DiskPressure',
  'imagefs.inodesFree': 'DiskPressure',
  'pid.available': 'PIDPressure',
};

/** Either an absolute quantity (bytes, inodes or pids) or a fraction of capacity (float32, as upstream). */
export interface ThresholdValue {
  quantity?: number;
  /** The quantity as written, canonicalized for messages ("100Mi"). */
  quantityText?: string;
  /** 0.1 for "10%" (a float32, so 0.10000000149011612). */
  percentage?: number;
}

export interface Threshold {
  signal: Signal;
  /** Upstream's only operator. */
  operator: 'LessThan';
  value: ThresholdValue;
  /** 0 for a hard threshold; soft thresholds must wait this long after first being met. */
  gracePeriodMs: number;
  minReclaim?: ThresholdValue;
}

export class EvictionConfigError extends Error {}

/** Upstream's DefaultEvictionHard on Linux. Setting --eviction-hard replaces this map as a whole (as 1.20). */
export const DEFAULT_EVICTION_HARD_MAP: Readonly<Record<string, string>> = Object.freeze({
  'memory.available': '100Mi',
  'nodefs.available': '10%',
  'nodefs.inodesFree': '5%',
  'imagefs.available': '15%',
});

const isSignal = (s: string): s is Signal => (SIGNALS as readonly string[]).includes(s);

/** parsePercentage: float32(value)/100 computed in float32. */
function parsePercentage(text: string): number {
  const raw = text.slice(0, -1);
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) throw new EvictionConfigError(`strconv.ParseFloat: parsing ${JSON.stringify(raw)}: invalid syntax`);
  return Math.fround(Math.fround(Number(raw)) / 100);
}

const BINARY_SUFFIX = /(Ki|Mi|Gi|Ti|Pi|Ei)$/;
const DECIMAL_SUFFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'];

/** A count as a canonical DecimalSI quantity: `1k`, `5M`, `838860`. */
export function formatDecimalQuantity(n: number): string {
  let v = Math.trunc(n);
  if (v === 0) return '0';
  let i = 0;
  while (i < DECIMAL_SUFFIXES.length - 1 && v % 1000 === 0) {
    v /= 1000;
    i++;
  }
  return `${v}${DECIMAL_SUFFIXES[i]}`;
}

/** A byte count as a canonical BinarySI quantity (`100Mi`, `1536`, `0`), as resource.Quantity.String(). */
export function formatBinaryQuantity(n: number): string {
  let v = Math.max(0, Math.trunc(n));
  if (v < 1024) return String(v);
  const suffixes = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  let i = 0;
  while (i < suffixes.length - 1 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return `${v}${suffixes[i]}`;
}

/** A quantity string as resource.ParseQuantity(s).String() prints it (binary suffixes stay binary). */
export function canonicalQuantity(text: string): string {
  const n = parseQuantity(text);
  return BINARY_SUFFIX.test(text.trim()) ? formatBinaryQuantity(n) : formatDecimalQuantity(n);
}

/** parseThresholdStatement: undefined for 0% and 100% (ignored, as upstream). */
export function parseThresholdStatement(signal: string, val: string): Threshold | undefined {
  if (!isSignal(signal)) throw new EvictionConfigError(`unsupported eviction signal ${signal}`);
  const v = String(val).trim();
  if (v.endsWith('%')) {
    if (v === '0%' || v === '100%') return undefined;
    const percentage = parsePercentage(v);
    if (percentage < 0) throw new EvictionConfigError(`eviction percentage threshold ${signal} must be >= 0%: ${v}`);
    if (percentage > 1) throw new EvictionConfigError(`eviction percentage threshold ${signal} must be <= 100%: ${v}`);
    return { signal, operator: 'LessThan', value: { percentage }, gracePeriodMs: 0 };
  }
  let quantity: number;
  try {
    quantity = parseQuantity(v);
  } catch (err) {
    throw new EvictionConfigError((err as Error).message);
  }
  if (!(quantity > 0)) throw new EvictionConfigError(`eviction threshold ${signal} must be positive: ${v}`);
  return { signal, operator: 'LessThan', value: { quantity, quantityText: canonicalQuantity(v) }, gracePeriodMs: 0 };
}

/** Go's time.ParseDuration for the units a grace period uses. */
function parseGoDuration(s: string): number {
  const text = String(s).trim();
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let consumed = 0;
  const neg = text.startsWith('-');
  const body = neg || text.startsWith('+') ? text.slice(1) : text;
  for (const m of body.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed !== body.length || body.length === 0) throw new EvictionConfigError(`time: invalid duration ${JSON.stringify(text)}`);
  return neg ? -total : total;
}

export interface EvictionConfigInput {
  /** signal → "100Mi" / "10%"; undefined = upstream's defaults. */
  hard?: Readonly<Record<string, string>> | undefined;
  soft?: Readonly<Record<string, string>> | undefined;
  /** signal → Go duration ("1m30s"). */
  softGracePeriod?: Readonly<Record<string, string>> | undefined;
  /** signal → "500Mi" / "5%". */
  minimumReclaim?: Readonly<Record<string, string>> | undefined;
}

/** ParseThresholdConfig: hard thresholds, then soft ones (each needs a grace period), minimum reclaims attached. */
export function parseThresholdConfig(input: EvictionConfigInput): Threshold[] {
  const statements = (m: Readonly<Record<string, string>> | undefined): Threshold[] =>
    Object.entries(m ?? {}).flatMap(([k, v]) => parseThresholdStatement(k, v) ?? []);
  const hard = statements(input.hard ?? DEFAULT_EVICTION_HARD_MAP);
  const soft = statements(input.soft);
  const grace = new Map<Signal, number>();
  for (const [k, v] of Object.entries(input.softGracePeriod ?? {})) {
    if (!isSignal(k)) throw new EvictionConfigError(`unsupported eviction signal ${k}`);
    const ms = parseGoDuration(v);
    if (ms < 0) throw new EvictionConfigError(`invalid eviction grace period specified: ${v}, must be a positive value`);
    grace.set(k, ms);
  }
  const minReclaim = new Map<Signal, ThresholdValue>();
  for (const [k, raw] of Object.entries(input.minimumReclaim ?? {})) {
    if (!isSignal(k)) throw new EvictionConfigError(`unsupported eviction signal ${k}`);
    const v = String(raw).trim();
    if (v.endsWith('%')) {
      const percentage = parsePercentage(v);
      if (percentage <= 0) throw new EvictionConfigError(`eviction percentage minimum reclaim ${k} must be positive: ${v}`);
      minReclaim.set(k, { percentage });
      continue;
    }
    let quantity: number;
    try {
      quantity = parseQuantity(v);
    } catch (err) {
      throw new EvictionConfigError((err as Error).message);
    }
    if (quantity < 0) throw new EvictionConfigError(`negative eviction minimum reclaim specified for ${k}`);
    minReclaim.set(k, { quantity, quantityText: canonicalQuantity(v) });
  }
  for (const t of soft) {
    const g = grace.get(t.signal);
    if (g === undefined) throw new EvictionConfigError(`grace period must be specified for the soft eviction threshold ${t.signal}`);
    t.gracePeriodMs = g;
  }
  const all = [...hard, ...soft];
  for (const t of all) {
    const m = minReclaim.get(t.signal);
    if (m) t.minReclaim = m;
  }
  return all;
}

/** `memory.available<100Mi,nodefs.available<10%` (the flags' LangleSeparatedMapStringString) → a map. */
export function parseLangleMap(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('<');
    if (i <= 0) throw new EvictionConfigError(`malformed pair, expect string<string: ${JSON.stringify(part)}`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** GetThresholdQuantity: the quantity itself, or capacity × percentage truncated to an integer. */
export function thresholdQuantity(v: ThresholdValue, capacity: number): number {
  if (v.quantity !== undefined) return v.quantity;
  return Math.trunc(capacity * (v.percentage ?? 0));
}

export const isHardThreshold = (t: Threshold): boolean => t.gracePeriodMs === 0;

/** A stable key per threshold (hasThreshold compares signal, operator, value and grace period). */
export function thresholdKey(t: Threshold): string {
  return `${t.signal}|${t.operator}|${t.value.quantity ?? ''}|${t.value.percentage ?? ''}|${t.gracePeriodMs}`;
}

/** "threshold(signal=memory.available, operator=LessThan, value=100Mi, gracePeriod=0s)" for logs. */
export function describeThreshold(t: Threshold): string {
  const value = t.value.quantityText ?? `${Math.round((t.value.percentage ?? 0) * 10000) / 100}%`;
  return `${t.signal}<${value}${t.gracePeriodMs ? ` (grace ${t.gracePeriodMs / 1000}s)` : ''}`;
}

/**
 * The hard thresholds as the node status's allocatable needs them (hardEvictionReservation): memory.available as
 * bytes of `memoryCapacityBytes`, nodefs.available as bytes or a percentage; absent thresholds reserve nothing.
 */
export function allocatableReservation(thresholds: readonly Threshold[], memoryCapacityBytes: number): {
  memoryAvailableBytes: number;
  nodeFsAvailablePercent: number;
  nodeFsAvailableBytes?: number;
  nodeFsInodesFreePercent: number;
  imageFsAvailablePercent: number;
} {
  const hard = thresholds.filter(isHardThreshold);
  const mem = hard.find((t) => t.signal === 'memory.available');
  const nodefs = hard.find((t) => t.signal === 'nodefs.available');
  const pct = (s: Signal): number => (hard.find((t) => t.signal === s)?.value.percentage ?? 0) * 100;
  return {
    memoryAvailableBytes: mem ? thresholdQuantity(mem.value, memoryCapacityBytes) : 0,
    // The percentage goes back through float32 in computeResources, as upstream's GetThresholdQuantity.
    nodeFsAvailablePercent: nodefs?.value.percentage !== undefined ? Math.round(nodefs.value.percentage * 1e6) / 1e4 : 0,
    ...(nodefs?.value.quantity !== undefined ? { nodeFsAvailableBytes: nodefs.value.quantity } : {}),
    nodeFsInodesFreePercent: pct('nodefs.inodesFree'),
    imageFsAvailablePercent: pct('imagefs.available'),
  };
}

// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource): "100m", "1.5", "64Mi", "1e3", "2G".

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const RE = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;

/** Parses a quantity into a plain number of base units; throws on malformed input. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') {
    if (!Number.isFinite(q)) throw new Error(`quantity ${q} is not finite`);
    return q;
  }
  const m = RE.exec(q.trim());
  if (!m) throw new Error(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
  const n = Number(m[1]);
  if (m[2]) return n * (BINARY[m[2]] ?? DECIMAL[m[2]] ?? 1);
  if (m[3]) return n * 10 ** Number(m[3]);
  return n;
}

export function isValidQuantity(q: unknown): boolean {
  if (typeof q !== 'string' && typeof q !== 'number') return false;
  try {
    parseQuantity(q);
    return true;
  } catch {
    return false;
  }
}

/** CPU quantity → millicores, rounded up as the API server does. */
export function cpuMillis(q: string | number | undefined): number {
  if (q === undefined) return 0;
  return Math.ceil(parseQuantity(q) * 1000 - 1e-9) + 0;
}

/** Memory/storage quantity → bytes. */
export function bytes(q: string | number | undefined): number {
  if (q === undefined) return 0;
  return Math.ceil(parseQuantity(q) - 1e-9) + 0;
}

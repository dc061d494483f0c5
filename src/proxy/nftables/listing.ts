// Parses `nft list table ip kube-proxy` (text) into what a full sync reconciles against: chains with their rules
// (and base-chain hook/priority), sets/maps with their elements. Pure. The text form is used rather than `-j`:
// berth writes per-service rules in the form nft prints them, so rules compare as strings, and the text is
// several times smaller to read and parse than the JSON at 10k Services.

export interface ObservedChain {
  rules: string[];
  base?: { type: string; hook: string; priority: number };
}

export interface ObservedSet {
  /** key → verdict ('' for plain sets); comments are dropped. */
  elements: Map<string, string>;
  /** Elements as printed (with comments), for `berth rules`. */
  raw: string[];
  /** `timeout` of the set in seconds, when it has one. */
  timeoutSeconds?: number;
}

export interface ObservedTable {
  exists: boolean;
  chains: Map<string, ObservedChain>;
  sets: Map<string, ObservedSet>;
}

export const EMPTY_TABLE: ObservedTable = Object.freeze({ exists: false, chains: new Map(), sets: new Map() });

const NAMED_PRIORITIES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

export function parsePriority(s: string): number | undefined {
  const m = /^(-?\d+|[a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(s.trim());
  if (!m) return undefined;
  const base = /^-?\d+$/.test(m[1]!) ? Number(m[1]) : NAMED_PRIORITIES[m[1]!];
  if (base === undefined) return undefined;
  return m[2] ? base + (m[2] === '+' ? 1 : -1) * Number(m[3]) : base;
}

/** "3h", "1h2m3s", "10800s", "1d" → seconds. */
export function parseNftDuration(s: string): number | undefined {
  let total = 0;
  let matched = '';
  for (const m of s.matchAll(/(\d+)(d|h|ms|m|s)/g)) {
    const n = Number(m[1]);
    total += m[2] === 'd' ? n * 86400 : m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
    matched += m[0];
  }
  return matched === s ? total : undefined;
}

function parseElement(item: string): [string, string] {
  let s = item.trim();
  const c = s.indexOf(' comment "');
  let value = '';
  const colon = s.indexOf(' : ');
  if (colon >= 0) {
    value = s.slice(colon + 3).trim();
    s = s.slice(0, colon);
  }
  if (c >= 0 && c < s.length) s = s.slice(0, c);
  // Dynamic sets print "addr timeout 3h expires 2h59m"; keep the key only.
  const t = s.indexOf(' timeout ');
  if (t >= 0) s = s.slice(0, t);
  const e = s.indexOf(' expires ');
  if (e >= 0) s = s.slice(0, e);
  return [s.trim(), value];
}

/** Parses the listing of one table. An empty string (table absent) gives an observed table that does not exist. */
export function parseNftTable(text: string): ObservedTable {
  const out: ObservedTable = { exists: false, chains: new Map(), sets: new Map() };
  const lines = text.split('\n');
  let chain: ObservedChain | undefined;
  let set: ObservedSet | undefined;
  let elems: string | undefined;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    if (elems !== undefined) {
      elems += ' ' + line;
      if (line.endsWith('}')) {
        finishElements(set!, elems);
        elems = undefined;
      }
      continue;
    }
    if (line.startsWith('table ')) {
      out.exists = true;
      continue;
    }
    let m = /^chain (\S+) \{$/.exec(line);
    if (m) {
      chain = { rules: [] };
      out.chains.set(m[1]!, chain);
      set = undefined;
      continue;
    }
    m = /^(?:set|map) (\S+) \{$/.exec(line);
    if (m) {
      set = { elements: new Map(), raw: [] };
      out.sets.set(m[1]!, set);
      chain = undefined;
      continue;
    }
    if (line === '}') {
      chain = undefined;
      set = undefined;
      continue;
    }
    if (chain) {
      const b = /^type (\w+) hook (\w+)(?: device \S+)? priority ([^;]+);/.exec(line);
      if (b) {
        chain.base = { type: b[1]!, hook: b[2]!, priority: parsePriority(b[3]!) ?? NaN };
        continue;
      }
      if (chain.rules.length === 0 && /^comment "[^"]*"$/.test(line)) continue;
      chain.rules.push(line);
      continue;
    }
    if (set) {
      if (line.startsWith('elements = {')) {
        elems = line;
        if (line.endsWith('}')) {
          finishElements(set, elems);
          elems = undefined;
        }
        continue;
      }
      const t = /^timeout (\S+)$/.exec(line);
      if (t) set.timeoutSeconds = parseNftDuration(t[1]!);
    }
  }
  return out;
}

function finishElements(set: ObservedSet, text: string): void {
  const body = text.slice(text.indexOf('{') + 1, text.lastIndexOf('}'));
  for (const item of body.split(',')) {
    if (item.trim() === '') continue;
    set.raw.push(item.trim());
    const [k, v] = parseElement(item);
    set.elements.set(k, v);
  }
}

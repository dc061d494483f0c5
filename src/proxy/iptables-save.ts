// Parses iptables-save output into tables → chains → rule lines (each line kept verbatim, "-A CHAIN …", counters
// stripped). Pure. Used by the full sync (observed state), cleanup and `berth rules`.

export interface SavedTable {
  /** Chain → its rules in kernel order. Built-in chains included. */
  chains: Map<string, string[]>;
}

export type SavedState = Map<string, SavedTable>;

export function parseIptablesSave(text: string): SavedState {
  const state: SavedState = new Map();
  let table: SavedTable | undefined;
  let start = 0;
  const n = text.length;
  while (start < n) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    let line = text.slice(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    const c = line.charCodeAt(0);
    if (c === 35 /* # */) continue;
    if (c === 91 /* [ */) {
      // "[pkts:bytes] -A …" from iptables-save -c.
      const close = line.indexOf('] ');
      if (close < 0) continue;
      line = line.slice(close + 2);
    }
    if (line.startsWith('-A ')) {
      if (!table) continue;
      const sp = line.indexOf(' ', 3);
      const chain = sp < 0 ? line.slice(3) : line.slice(3, sp);
      let list = table.chains.get(chain);
      if (!list) table.chains.set(chain, (list = []));
      list.push(line);
    } else if (c === 58 /* : */) {
      if (!table) continue;
      const sp = line.indexOf(' ');
      const chain = sp < 0 ? line.slice(1) : line.slice(1, sp);
      if (!table.chains.has(chain)) table.chains.set(chain, []);
    } else if (c === 42 /* * */) {
      const name = line.slice(1).trim();
      table = state.get(name);
      if (!table) state.set(name, (table = { chains: new Map() }));
    } else if (line === 'COMMIT') {
      table = undefined;
    }
  }
  return state;
}

/** The jump target of a rule line ("-j X" or "-g X"), or undefined. */
export function ruleTarget(line: string): string | undefined {
  let i = line.lastIndexOf(' -j ');
  const g = line.lastIndexOf(' -g ');
  if (g > i) i = g;
  if (i < 0) return undefined;
  const rest = line.slice(i + 4);
  const sp = rest.indexOf(' ');
  return sp < 0 ? rest : rest.slice(0, sp);
}

/** Extracts the comment of a rule ("-m comment --comment "x""), or undefined. */
export function ruleComment(line: string): string | undefined {
  const i = line.indexOf('--comment ');
  if (i < 0) return undefined;
  const rest = line.slice(i + 10);
  if (rest.startsWith('"')) {
    let out = '';
    for (let k = 1; k < rest.length; k++) {
      const ch = rest[k]!;
      if (ch === '\\' && k + 1 < rest.length) {
        out += rest[++k];
        continue;
      }
      if (ch === '"') return out;
      out += ch;
    }
    return out;
  }
  const sp = rest.indexOf(' ');
  return sp < 0 ? rest : rest.slice(0, sp);
}

/** "-A CHAIN rest" → "CHAIN" */
export function ruleChain(line: string): string {
  const sp = line.indexOf(' ', 3);
  return sp < 0 ? line.slice(3) : line.slice(3, sp);
}

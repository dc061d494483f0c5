// Small IPv4 helpers. Addresses are written into rules exactly as iptables-save prints them (dotted quad, CIDRs
// reduced to their network address), so the text we write compares equal to the text the kernel gives back.

/** Parses a strict dotted-quad IPv4 address; undefined when it is not one. */
export function parseIPv4(s: string): number | undefined {
  // Hand-rolled: this runs for every address of every Service and endpoint.
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return undefined;
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros ("010" is octal to some parsers and decimal to others).
      if (digits === 1 && octet === 0) return undefined;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return n * 256 + octet;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function isIPv4(s: string): boolean {
  return parseIPv4(s) !== undefined;
}

/** True for anything that looks like an IPv6 address (used to skip the other family quietly). */
export function looksIPv6(s: string): boolean {
  return s.includes(':');
}

export interface CIDR {
  readonly base: number;
  readonly prefix: number;
}

export function parseCIDR(s: string): CIDR | undefined {
  const slash = s.indexOf('/');
  const ip = parseIPv4(slash < 0 ? s : s.slice(0, slash));
  if (ip === undefined) return undefined;
  let prefix = 32;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^[0-9]{1,2}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > 32) return undefined;
  }
  return { base: (ip & maskOf(prefix)) >>> 0, prefix };
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function formatCIDR(c: CIDR): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

/** "10.1.2.3/8" → "10.0.0.0/8"; undefined when invalid. */
export function canonicalCIDR(s: string): string | undefined {
  const c = parseCIDR(s.trim());
  return c ? formatCIDR(c) : undefined;
}

export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCIDR(cidr);
  const a = parseIPv4(ip);
  if (!c || a === undefined) return false;
  return ((a & maskOf(c.prefix)) >>> 0) === c.base;
}

export function compareIPv4(a: string, b: string): number {
  return (parseIPv4(a) ?? 0) - (parseIPv4(b) ?? 0);
}

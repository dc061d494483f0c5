// Resource quantities against k8s.io/apimachinery/pkg/api/resource: suffixes, exponents, and MilliValue() /
// Value() rounding up.
import { describe, expect, it } from 'vitest';
import { bytes, cpuMillis, isValidQuantity, parseQuantity } from '../../src/kubelet/pod/quantity.ts';

describe('parseQuantity', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['+2', 2],
    ['100m', 0.1],
    ['250u', 0.00025],
    ['5n', 5e-9],
    ['2k', 2000],
    ['2M', 2e6],
    ['2G', 2e9],
    ['1T', 1e12],
    ['1Ki', 1024],
    ['64Mi', 64 * 2 ** 20],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['2Ti', 2 * 2 ** 40],
    ['1e3', 1000],
    ['1E3', 1000],
    ['5e-3', 0.005],
    [' 1Gi ', 2 ** 30],
    [7, 7],
  ])('%j → %d', (q, n) => {
    expect(parseQuantity(q)).toBeCloseTo(n, 12);
  });

  it.each(['', 'abc', '1.2.3', '1MB', '1 Gi', 'Gi', '--1', '1K', '0x10'])('%j is not a quantity', (q) => {
    expect(() => parseQuantity(q)).toThrow(/quantities must match the regular expression/);
    expect(isValidQuantity(q)).toBe(false);
  });

  it('non-finite numbers and other types are rejected', () => {
    expect(() => parseQuantity(Number.POSITIVE_INFINITY)).toThrow();
    expect(isValidQuantity(Number.NaN)).toBe(false);
    expect(isValidQuantity(null)).toBe(false);
    expect(isValidQuantity({})).toBe(false);
    expect(isValidQuantity('128Mi')).toBe(true);
    expect(isValidQuantity(2)).toBe(true);
  });
});

describe('cpuMillis (MilliValue, rounded up)', () => {
  it.each([
    [undefined, 0],
    ['0', 0],
    ['100m', 100],
    ['0.1', 100],
    ['1', 1000],
    ['2.5', 2500],
    ['1500m', 1500],
    ['1u', 1],
    ['1.0001', 1001],
    [2, 2000],
  ])('%j → %i m', (q, m) => {
    expect(cpuMillis(q)).toBe(m);
  });
});

describe('bytes (Value, rounded up)', () => {
  it.each([
    [undefined, 0],
    ['0', 0],
    ['1k', 1000],
    ['1Ki', 1024],
    ['1.5Ki', 1536],
    ['128Mi', 134_217_728],
    ['1G', 1e9],
    ['0.5', 1],
    ['100m', 1],
    ['1e6', 1_000_000],
  ])('%j → %i', (q, b) => {
    expect(bytes(q)).toBe(b);
  });
});

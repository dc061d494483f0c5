import { describe, expect, it } from 'vitest';
import {
  CAP_NAMES,
  FULL_HOST_CAPS,
  buildPrivilegedSettings,
  clampOomScoreAdj,
  computeHostCaps,
  parseCapBnd,
  parseCapMask,
} from '../../src/cri/docker/host-caps.ts';

const STATUS = `Name:\tnode
Umask:\t0022
State:\tS (sleeping)
CapInh:\t0000000000000000
CapPrm:\t000001fffeffffff
CapEff:\t000001fffeffffff
CapBnd:\t000001fffeffffff
CapAmb:\t0000000000000000
NoNewPrivs:\t0
`;

describe('parseCapMask', () => {
  it.each([
    ['0000000000000000', []],
    ['0000000000000001', [0]],
    ['0000000000000003', [0, 1]],
    ['0000000001000000', [24]],
    ['8000000000000000', [63]],
  ])('%s -> %j', (hex, bits) => {
    expect(parseCapMask(hex)).toEqual(bits);
  });

  it('reads a full 41-capability set', () => {
    expect(parseCapMask('000001ffffffffff')).toEqual([...Array(41).keys()]);
  });

  it.each(['', 'xyz', '0x10', '00000000000000000'])('rejects %j', (hex) => {
    expect(() => parseCapMask(hex)).toThrow(/malformed/);
  });
});

describe('parseCapBnd', () => {
  it('finds CapBnd in /proc/self/status text (this host: everything but CAP_SYS_RESOURCE)', () => {
    const bits = parseCapBnd(STATUS);
    expect(bits).toHaveLength(40);
    expect(bits).not.toContain(24);
    expect(CAP_NAMES[24]).toBe('CAP_SYS_RESOURCE');
  });

  it('throws without a CapBnd line', () => {
    expect(() => parseCapBnd('Name:\tx\n')).toThrow(/CapBnd/);
  });
});

describe('computeHostCaps', () => {
  it('names what is missing up to cap_last_cap', () => {
    const caps = computeHostCaps({ capBnd: parseCapBnd(STATUS), capLastCap: 40, oomScoreAdj: 0 });
    expect(caps.missing).toEqual(['CAP_SYS_RESOURCE']);
    expect(caps.canLowerOomScoreAdj).toBe(false);
    expect(caps.bounding).toContain('CAP_SYS_ADMIN');
    expect(caps.bounding).toContain('CAP_CHECKPOINT_RESTORE');
    expect(caps.bounding).not.toContain('CAP_SYS_RESOURCE');
  });

  it('ignores capabilities the kernel does not know (cap_last_cap)', () => {
    const caps = computeHostCaps({ capBnd: [...Array(38).keys()], capLastCap: 37, oomScoreAdj: 0 });
    expect(caps.missing).toEqual([]);
    expect(caps.canLowerOomScoreAdj).toBe(true);
  });

  it('names unknown bits by number', () => {
    const caps = computeHostCaps({ capBnd: [0, 45], capLastCap: 1, oomScoreAdj: 0 });
    expect(caps.bounding).toEqual(['CAP_CHOWN', 'CAP_45']);
    expect(caps.missing).toEqual(['CAP_DAC_OVERRIDE']);
  });
});

describe('clampOomScoreAdj', () => {
  const limited = computeHostCaps({ capBnd: parseCapBnd(STATUS), capLastCap: 40, oomScoreAdj: 0 });
  it.each([
    [-998, limited, 0],
    [-997, limited, 0],
    [0, limited, 0],
    [1000, limited, 1000],
    [500, { ...limited, minOomScoreAdj: 100 }, 500],
    [50, { ...limited, minOomScoreAdj: 100 }, 100],
    [-998, FULL_HOST_CAPS, -998],
    [-5000, FULL_HOST_CAPS, -1000],
    [5000, FULL_HOST_CAPS, 1000],
  ])('%i -> %i', (value, caps, want) => {
    expect(clampOomScoreAdj(value, caps)).toBe(want);
  });
});

describe('buildPrivilegedSettings', () => {
  it('uses Privileged when the bounding set is full', () => {
    expect(buildPrivilegedSettings(FULL_HOST_CAPS)).toEqual({
      privileged: true,
      capAdd: [],
      securityOpt: [],
      deviceCgroupRules: [],
      unmaskPaths: false,
    });
  });

  it('adds every capability the host has, unconfined, when one is missing', () => {
    const caps = computeHostCaps({ capBnd: parseCapBnd(STATUS), capLastCap: 40, oomScoreAdj: 0 });
    const p = buildPrivilegedSettings(caps);
    expect(p.privileged).toBe(false);
    expect(p.capAdd).toHaveLength(40);
    expect(p.capAdd).not.toContain('CAP_SYS_RESOURCE');
    expect(p.capAdd).not.toContain('ALL');
    expect(p.securityOpt).toEqual(['seccomp=unconfined', 'apparmor=unconfined']);
    expect(p.deviceCgroupRules).toEqual(['a *:* rwm']);
    expect(p.unmaskPaths).toBe(true);
  });
});

// SyncRunner reads time only from its injected clock (issue #9 defect 4): healthy() before and after the first
// success follows a fake clock, not the wall clock.
import { describe, expect, it } from 'vitest';
import { FakeClock, SyncRunner, silentLogger } from '../../src/lib/index.ts';

const runner = (clock: FakeClock, run: () => Promise<void> = async () => undefined): SyncRunner =>
  new SyncRunner({ name: 't', run, unhealthyAfterMs: 1000, log: silentLogger, clock });

describe('SyncRunner on an injected clock', () => {
  it('is healthy during its grace period and unhealthy once the fake clock passes it without a success', () => {
    const clock = new FakeClock();
    const r = runner(clock);
    expect(r.healthy()).toBe(true);
    clock.advance(999);
    expect(r.healthy()).toBe(true);
    clock.advance(2);
    expect(r.healthy()).toBe(false);
  });

  it('a fake clock far from the wall clock still ends the grace period (the creation time is on the same clock)', () => {
    const clock = new FakeClock(Date.now() + 365 * 86_400_000);
    const r = runner(clock);
    clock.advance(5000);
    expect(r.healthy()).toBe(false);
  });

  it('after a success: healthy until unhealthyAfterMs of fake time, and the success time is fake time', async () => {
    const clock = new FakeClock();
    const r = runner(clock);
    r.start();
    await r.idle();
    r.stop();
    expect(r.runs).toBe(1);
    expect(r.lastSuccessAt).toBe(clock.now());
    clock.advance(999);
    expect(r.healthy()).toBe(true);
    clock.advance(1);
    expect(r.healthy()).toBe(false);
  });
});

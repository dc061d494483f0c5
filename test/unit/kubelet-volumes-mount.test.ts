// Issue #9 defect 4: mount/umount run with a timeout (a hung mount must not stall a pod worker forever).
import { describe, expect, it } from 'vitest';
import { MountError, runWithTimeout, listMountPoints } from '../../src/kubelet/volumes/mount.ts';

describe('mount helpers', () => {
  it('a command that hangs is killed at the timeout and rejects with MountError', async () => {
    const t0 = Date.now();
    const err = await runWithTimeout('sleep', ['30'], 200).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MountError);
    expect((err as Error).message).toBe('sleep 30 failed: timed out after 200ms');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a failing command rejects with its output; a good one resolves', async () => {
    await expect(runWithTimeout('sh', ['-c', 'echo boom >&2; exit 3'], 5000)).rejects.toThrow('sh -c echo boom >&2; exit 3 failed: boom');
    await expect(runWithTimeout('true', [], 5000)).resolves.toBeUndefined();
  });

  it('lists this namespace’s mount points, / included', async () => {
    expect(await listMountPoints()).toContain('/');
  });
});

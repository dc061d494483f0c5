// Local test images, built without a registry: the host's static busybox (Debian's busybox-static) imported as
// a root filesystem, and a child image with STOPSIGNAL SIGUSR1 (built with the classic builder from the first;
// `docker import --change` does not accept STOPSIGNAL). Idempotent and fast when the images exist.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type Dockerode from 'dockerode';
import { buildTar, type TarEntry } from '../../../src/cri/docker/index.ts';

export const BUSYBOX_IMAGE = 'berth-test/busybox:latest';
export const STOPSIGNAL_IMAGE = 'berth-test/busybox-stopsignal:latest';
/** ENTRYPOINT ["echo", "ep"] and CMD ["cmd-default"]: for Kubernetes command/args semantics. */
export const ENTRYPOINT_IMAGE = 'berth-test/busybox-entrypoint:latest';
export const BUSYBOX_PATH = '/bin/busybox';

let inFlight: Promise<void> | undefined;

/** Builds the test images once per process (and only when missing from the daemon). */
export function ensureTestImages(docker: Dockerode): Promise<void> {
  inFlight ??= build(docker).catch((err: unknown) => {
    inFlight = undefined;
    throw err;
  });
  return inFlight;
}

async function exists(docker: Dockerode, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (err: unknown) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

function follow(docker: Dockerode, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string; errorDetail?: { message?: string } }[]) => {
      if (err) return reject(err);
      const bad = out.find((m) => m.error || m.errorDetail);
      if (bad) return reject(new Error(bad.error ?? bad.errorDetail?.message ?? 'docker stream error'));
      resolve();
    });
  });
}

export function buildBusyboxRootfs(): Buffer {
  const applets = execFileSync(BUSYBOX_PATH, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'busybox' && !s.includes('/'));
  const entries: TarEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'sbin' },
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/bin' },
    { type: 'dir', path: 'etc' },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'var' },
    { type: 'file', path: 'bin/busybox', data: readFileSync(BUSYBOX_PATH), mode: 0o755 },
    { type: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n') },
    { type: 'file', path: 'etc/group', data: Buffer.from('root:x:0:\nnogroup:x:65534:\n') },
    ...applets.map((a): TarEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
  ];
  return buildTar(entries);
}

async function build(docker: Dockerode): Promise<void> {
  if (!(await exists(docker, BUSYBOX_IMAGE))) {
    const [repo, tag] = BUSYBOX_IMAGE.split(':') as [string, string];
    const stream = await docker.importImage(buildBusyboxRootfs() as unknown as NodeJS.ReadableStream, {
      repo,
      tag,
      changes: ['ENV PATH=/bin:/sbin:/usr/bin', 'CMD ["sh"]', 'LABEL io.berth.test-image=true'],
    } as object);
    await follow(docker, stream as NodeJS.ReadableStream);
  }
  await buildFrom(docker, STOPSIGNAL_IMAGE, 'STOPSIGNAL SIGUSR1');
  await buildFrom(docker, ENTRYPOINT_IMAGE, 'ENTRYPOINT ["echo", "ep"]\nCMD ["cmd-default"]');
}

/** `FROM busybox` + `instructions` with the classic builder (a local base image needs no registry). */
async function buildFrom(docker: Dockerode, ref: string, instructions: string): Promise<void> {
  if (await exists(docker, ref)) return;
  const context = buildTar([{ type: 'file', path: 'Dockerfile', data: Buffer.from(`FROM ${BUSYBOX_IMAGE}\n${instructions}\n`) }]);
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: ref, rm: true, forcerm: true });
  await follow(docker, stream);
}

// Container logs: PodLogOptions decoding/validation as upstream's getContainerLogs, instance selection as
// kubelet_pods.go validateContainerLogStatus, and reading Docker json-file logs (tail across rotated files, since,
// timestamps, byte limit, follow until exit, follow across a rotation) on real temporary files.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PodStatus } from 'kubernetes-types/core/v1';
import { computePodLogOptions, DECODE_ERROR, INVALID_ERROR } from '../../src/kubelet/logs/log-options.ts';
import { selectLogContainer } from '../../src/kubelet/logs/select.ts';
import { decodeJsonLogLine, readContainerLog, type ReadLogOptions } from '../../src/kubelet/logs/json-file.ts';
import { podFromRuntime } from '../../src/kubelet/logs/container-logs.ts';
import { buildLogsQuery, splitLogsArgs } from '../../src/cli/logs.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-logs-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('PodLogOptions from the query', () => {
  const q = (s: string) => computePodLogOptions(new URLSearchParams(s));
  it.each([
    ['', { follow: false, previous: false, timestamps: false }],
    ['follow=true&previous=1&timestamps=', { follow: true, previous: true, timestamps: true }],
    ['follow=false&timestamps=0', { follow: false, timestamps: false }],
    ['tailLines=5', { tailLines: 5 }],
    ['tail=7', { tailLines: 7 }],
    ['limitBytes=100', { limitBytes: 100 }],
    ['sinceSeconds=10', { sinceSeconds: 10 }],
    ['sinceTime=2024-01-02T03:04:05Z', { sinceTimeMs: Date.UTC(2024, 0, 2, 3, 4, 5) }],
  ])('%s decodes', (query, expected) => {
    const r = q(query);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.options).toMatchObject(expected);
  });
  it('tail=all drops tailLines (the legacy parameter)', () => {
    expect(q('tail=all&tailLines=3')).toEqual({ ok: true, options: { follow: false, previous: false, timestamps: false } });
  });
  it.each([
    ['tailLines=x', 400, DECODE_ERROR],
    ['limitBytes=1.5', 400, DECODE_ERROR],
    ['sinceTime=yesterday', 400, DECODE_ERROR],
    ['tailLines=-1', 422, INVALID_ERROR],
    ['limitBytes=0', 422, INVALID_ERROR],
    ['sinceSeconds=0', 422, INVALID_ERROR],
    ['sinceSeconds=5&sinceTime=2024-01-02T03:04:05Z', 422, INVALID_ERROR],
  ])('%s → %i', (query, status, message) => {
    expect(q(query)).toEqual({ ok: false, status, message });
  });
});

describe('which instance a log request reads', () => {
  const st = (s: Partial<NonNullable<PodStatus['containerStatuses']>[number]>): PodStatus => ({
    containerStatuses: [{ name: 'c', image: 'i', imageID: '', ready: false, restartCount: 1, ...s }],
  });
  const running = { running: {} };
  const dead = (id?: string) => ({ terminated: { exitCode: 1, ...(id ? { containerID: `docker://${id}` } : {}) } });
  it.each([
    ['running → current', st({ containerID: 'docker://cur', state: running }), false, { ok: true, containerId: 'cur' }],
    ['previous → last terminated', st({ containerID: 'docker://cur', state: running, lastState: dead('old') }), true, { ok: true, containerId: 'old' }],
    ['previous without one', st({ containerID: 'docker://cur', state: running }), true, { ok: false, message: 'previous terminated container "c" in pod "p" not found' }],
    ['terminated → that instance', st({ state: dead('t') }), false, { ok: true, containerId: 't' }],
    ['terminated without id → last state', st({ state: dead(), lastState: dead('l') }), false, { ok: true, containerId: 'l' }],
    ['back-off → last terminated', st({ state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: dead('l') }), false, { ok: true, containerId: 'l' }],
    ['image pull', st({ state: { waiting: { reason: 'ErrImagePull' } } }), false, { ok: false, message: 'container "c" in pod "p" is waiting to start: image can\'t be pulled' }],
    ['pull back-off', st({ state: { waiting: { reason: 'ImagePullBackOff' } } }), false, { ok: false, message: 'container "c" in pod "p" is waiting to start: trying and failing to pull image' }],
    ['creating', st({ state: { waiting: { reason: 'ContainerCreating' } } }), false, { ok: false, message: 'container "c" in pod "p" is waiting to start: ContainerCreating' }],
    ['no state', st({ state: {} }), false, { ok: false, message: 'container "c" in pod "p" is waiting to start - no logs yet' }],
    ['unknown container', { containerStatuses: [] }, false, { ok: false, message: 'container "c" in pod "p" is not available' }],
  ])('%s', (_n, status, previous, expected) => {
    expect(selectLogContainer('p', status as PodStatus, 'c', previous as boolean)).toEqual(expected);
  });

  it('from Docker labels: the newest instance is current, the one before is the last state', () => {
    const c = (id: string, createdAt: number, state: 'CONTAINER_RUNNING' | 'CONTAINER_EXITED') =>
      ({ id, createdAt, state, exitCode: 1, image: 'img', metadata: { name: 'app', attempt: createdAt }, labels: { 'io.kubernetes.pod.namespace': 'ns', 'io.kubernetes.pod.name': 'web', 'io.kubernetes.container.name': 'app' }, annotations: {} }) as never;
    const found = podFromRuntime('ns', 'web', [c('old', 1, 'CONTAINER_EXITED'), c('new', 2, 'CONTAINER_RUNNING')])!;
    expect(selectLogContainer('web', found.status, 'app', false)).toEqual({ ok: true, containerId: 'new' });
    expect(selectLogContainer('web', found.status, 'app', true)).toEqual({ ok: true, containerId: 'old' });
    expect(podFromRuntime('ns', 'other', [c('old', 1, 'CONTAINER_EXITED')])).toBeUndefined();
  });
});

const line = (log: string, time: string, stream = 'stdout'): string => `${JSON.stringify({ log, stream, time })}\n`;
const t = (s: number): string => `2024-05-01T00:00:${String(s).padStart(2, '0')}.123456789Z`;

async function read(file: string, o: Partial<ReadLogOptions>, extra: { isRunning?: () => Promise<boolean>; signal?: AbortSignal } = {}): Promise<string> {
  const chunks: Buffer[] = [];
  await readContainerLog({
    path: file,
    options: { timestamps: false, follow: false, ...o },
    write: async (c) => void chunks.push(Buffer.from(c)),
    isRunning: extra.isRunning ?? (async () => false),
    signal: extra.signal ?? new AbortController().signal,
    pollMs: 20,
  });
  return Buffer.concat(chunks).toString();
}

describe('reading json-file logs', () => {
  // Docker's layout: <id>-json.log plus rotated .1 (newer) and .2 (older); the kubelet path is a symlink to it.
  const dir = path.join(tmp, 'rotated');
  const base = path.join(dir, 'abc-json.log');
  const link = path.join(tmp, 'rotated-0.log');
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${base}.2`, line('one\n', t(1)) + line('two\n', t(2)));
  writeFileSync(`${base}.1`, line('three\n', t(3)) + 'garbage that is not json\n' + line('four\n', t(4), 'stderr'));
  writeFileSync(base, line('five\n', t(5)) + line('six\n', t(6)));
  symlinkSync(base, link);

  it('decodes any record as JSON.parse does (fast path and fallback agree)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.boolean(), fc.constantFrom('stdout', 'stderr'), fc.boolean(), (text, nl, stream, attrs) => {
        const log = nl ? `${text}\n` : text;
        const rec = attrs ? { log, stream, attrs: { tag: 'x' }, time: t(1) } : { log, stream, time: t(1) };
        expect(decodeJsonLogLine(JSON.stringify(rec))).toEqual({ log, stream, time: t(1) });
      }),
      { numRuns: 2000 },
    );
    // Go escapes <, > and & as \u003c…; a quote inside the text is escaped too.
    expect(decodeJsonLogLine('{"log":"a \\u003cb\\u003e \\"q\\"\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}')).toEqual({ log: 'a <b> "q"\n', stream: 'stdout', time: '2024-01-01T00:00:00Z' });
    expect(decodeJsonLogLine('{"log":"x\\",\\"stream\\":\\"fake","stream":"stderr","time":"2024-01-01T00:00:00Z"}')).toEqual({ log: 'x","stream":"fake', stream: 'stderr', time: '2024-01-01T00:00:00Z' });
  });

  it('decodes a Docker record and skips anything else', () => {
    expect(decodeJsonLogLine(line('x\n', t(1)).trim())).toEqual({ log: 'x\n', stream: 'stdout', time: t(1) });
    expect(decodeJsonLogLine('{"nope":1}')).toBeUndefined();
    expect(decodeJsonLogLine('not json')).toBeUndefined();
  });

  it('reads every file oldest first through the symlink', async () => {
    expect(await read(link, {})).toBe('one\ntwo\nthree\nfour\nfive\nsix\n');
  });

  it.each([
    [0, ''],
    [1, 'six\n'],
    [2, 'five\nsix\n'],
    [3, 'four\nfive\nsix\n'],
    // As upstream, tail counts lines of the file: the undecodable line in .1 is one of them.
    [5, 'three\nfour\nfive\nsix\n'],
    [6, 'two\nthree\nfour\nfive\nsix\n'],
    [100, 'one\ntwo\nthree\nfour\nfive\nsix\n'],
  ])('tailLines=%i crosses rotated files', async (n, expected) => {
    expect(await read(link, { tailLines: n })).toBe(expected);
  });

  it('since skips older entries; timestamps prefix the RFC 3339 time', async () => {
    expect(await read(link, { sinceMs: Date.parse(t(4)) })).toBe('four\nfive\nsix\n');
    expect(await read(link, { tailLines: 1, timestamps: true })).toBe(`${t(6)} six\n`);
  });

  it('limitBytes cuts the output at exactly that many bytes', async () => {
    expect(await read(link, { limitBytes: 6 })).toBe('one\ntw');
    expect(await read(link, { tailLines: 1, limitBytes: 100 })).toBe('six\n');
  });

  it('fails when the log file does not exist', async () => {
    await expect(read(path.join(tmp, 'missing.log'), {})).rejects.toThrow(/ENOENT/);
  });

  it('a long log is read in chunks with every line intact', async () => {
    const f = path.join(tmp, 'big-json.log');
    const lines = Array.from({ length: 20_000 }, (_, i) => line(`line ${i} ${'x'.repeat(i % 50)}\n`, t(i % 60))).join('');
    writeFileSync(f, lines);
    const out = await read(f, {});
    expect(out.split('\n')).toHaveLength(20_001);
    expect((await read(f, { tailLines: 3 })).split('\n').slice(0, 3).map((l) => l.split(' ')[1])).toEqual(['19997', '19998', '19999']);
  });
});

describe('following a log', () => {
  /** Follows a new log file `name` (first holding `first`) of a running container; `stop()` makes it stop running. */
  const follow = (name: string, first: string): { f: string; got: string[]; stop: () => void; done: Promise<unknown> } => {
    const f = path.join(tmp, name);
    writeFileSync(f, line(first, t(1)));
    let running = true;
    const got: string[] = [];
    const done = readContainerLog({
      path: f,
      options: { timestamps: false, follow: true },
      write: async (c) => void got.push(c.toString()),
      isRunning: async () => running,
      signal: new AbortController().signal,
      pollMs: 20,
    });
    const stop = (): void => {
      running = false;
    };
    return { f, got, stop, done };
  };

  it('streams appended lines and ends once the container stops running', async () => {
    const { f, got, stop, done } = follow('follow-json.log', 'a\n');
    await waitFor(() => got.join('') === 'a\n', 5000, 'first line');
    appendFileSync(f, line('b\n', t(2)));
    // A line written in two pieces is emitted once complete.
    const half = line('c\n', t(3));
    appendFileSync(f, half.slice(0, 10));
    await waitFor(() => got.join('') === 'a\nb\n', 5000, 'second line');
    appendFileSync(f, half.slice(10));
    await waitFor(() => got.join('') === 'a\nb\nc\n', 5000, 'third line');
    stop();
    appendFileSync(f, line('last words\n', t(4)));
    await done;
    expect(got.join('')).toBe('a\nb\nc\nlast words\n');
  });

  it('follows Docker rotating the file under it', async () => {
    const { f, got, stop, done } = follow('rot-json.log', 'before\n');
    await waitFor(() => got.join('') === 'before\n', 5000, 'first line');
    appendFileSync(f, line('tail of old file\n', t(2)));
    renameSync(f, `${f}.1`);
    writeFileSync(f, line('new file\n', t(3)));
    await waitFor(() => got.join('') === 'before\ntail of old file\nnew file\n', 5000, 'lines across the rotation');
    stop();
    await done;
  });

  it('stops when the client goes away (abort)', async () => {
    const f = path.join(tmp, 'abort-json.log');
    writeFileSync(f, line('x\n', t(1)));
    const ac = new AbortController();
    const done = read(f, { follow: true }, { isRunning: async () => true, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    expect(await done).toBe('x\n');
  });
});

describe('berth logs arguments', () => {
  it('takes its own flags out and leaves the rest for berth', () => {
    const { logs, others } = splitLogsArgs(['-f', '--tail', '5', '--since=1m', '-p', '--timestamps', '-c', 'app', '-n', 'kube-system', 'web', '--root-dir=/x']);
    expect(logs).toEqual({ follow: true, previous: true, timestamps: true, tail: '5', since: '1m', container: 'app', namespace: 'kube-system' });
    expect(others).toEqual(['web', '--root-dir=/x']);
    const q = buildLogsQuery(logs);
    expect(q instanceof URLSearchParams && Object.fromEntries(q)).toEqual({ follow: 'true', previous: 'true', timestamps: 'true', tailLines: '5', sinceSeconds: '60' });
    expect(buildLogsQuery({ ...logs, since: 'soon' })).toEqual({ error: expect.stringContaining('--since') });
  });
});

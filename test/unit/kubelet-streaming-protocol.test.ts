// The protocol decisions of the streaming room as upstream makes them: subprotocol negotiation (httpstream.Handshake,
// wsstream handshake), the streams each remotecommand version expects, the error-channel encoding per version, resize
// parsing, port-forward stream validation and pairing, and the WebSocket channel codec.
import { describe, expect, it } from 'vitest';
import { negotiateProtocol } from '../../src/kubelet/streaming/http.ts';
import { computeRequestId, validatePortForwardStream } from '../../src/kubelet/streaming/portforward.ts';
import {
  REMOTECOMMAND_SPDY_PROTOCOLS,
  ResizeParser,
  buildExitCodeStatus,
  buildInternalErrorStatus,
  buildSuccessStatus,
  encodeStatus,
} from '../../src/kubelet/streaming/remotecommand.ts';
import { computeExpectedStreams } from '../../src/kubelet/streaming/spdy-session.ts';
import { PassThrough } from 'node:stream';
import { runRemoteCommand, type RemoteSession, type V1Status } from '../../src/kubelet/streaming/remotecommand.ts';
import type { StreamingRuntime } from '../../src/cri/index.ts';
import { silentLogger } from '../../src/lib/index.ts';
import {
  REMOTECOMMAND_WS_PROTOCOLS,
  decodeChannelMessage,
  encodeChannelMessage,
  negotiateWebSocketProtocol,
} from '../../src/kubelet/streaming/websocket.ts';

describe('SPDY protocol negotiation (httpstream.Handshake)', () => {
  it.each([
    ['kubectl 1.20 offer picks v4', ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'], 'v4.channel.k8s.io'],
    ['client order wins', ['v2.channel.k8s.io', 'v4.channel.k8s.io'], 'v2.channel.k8s.io'],
    ['unknown versions are skipped', ['v9.channel.k8s.io', 'channel.k8s.io'], 'channel.k8s.io'],
  ])('%s', (_n, offer, want) => {
    expect(negotiateProtocol(offer, REMOTECOMMAND_SPDY_PROTOCOLS)).toEqual({ ok: true, protocol: want });
  });

  it('refuses a missing header with 400 and no common version with 403 listing what the server accepts', () => {
    expect(negotiateProtocol([], REMOTECOMMAND_SPDY_PROTOCOLS)).toMatchObject({ ok: false, code: 400, message: 'unable to upgrade: X-Stream-Protocol-Version is required' });
    const n = negotiateProtocol(['v9.channel.k8s.io'], ['v4.channel.k8s.io', 'channel.k8s.io']);
    expect(n).toEqual({
      ok: false,
      code: 403,
      message: 'unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], server accepts [v4.channel.k8s.io channel.k8s.io]',
      headers: [
        ['X-Accepted-Stream-Protocol-Versions', 'v4.channel.k8s.io'],
        ['X-Accepted-Stream-Protocol-Versions', 'channel.k8s.io'],
      ],
    });
  });
});

describe('streams a session waits for', () => {
  const all = { stdin: true, stdout: true, stderr: true, tty: false };
  it.each([
    ['v4 without tty', 'v4.channel.k8s.io', all, ['error', 'stdin', 'stdout', 'stderr']],
    ['v4 with tty adds resize', 'v4.channel.k8s.io', { ...all, stderr: false, tty: true }, ['error', 'stdin', 'stdout', 'resize']],
    ['v3 with tty adds resize', 'v3.channel.k8s.io', { ...all, tty: true }, ['error', 'stdin', 'stdout', 'stderr', 'resize']],
    ['v2 never resizes', 'v2.channel.k8s.io', { ...all, tty: true }, ['error', 'stdin', 'stdout', 'stderr']],
    ['stdout only', 'v4.channel.k8s.io', { stdin: false, stdout: true, stderr: false, tty: false }, ['error', 'stdout']],
  ])('%s', (_n, protocol, wants, want) => {
    expect(computeExpectedStreams(protocol, wants)).toEqual(want);
  });
});

describe('error channel', () => {
  it('v4 carries metav1.Status JSON as Go marshals it: NonZeroExitCode with the ExitCode cause', () => {
    expect(encodeStatus(buildExitCodeStatus(3), 'status')?.toString()).toBe(
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: Error executing in Docker Container: 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
    );
    expect(encodeStatus(buildSuccessStatus(), 'status')?.toString()).toBe('{"metadata":{},"status":"Success"}');
    expect(JSON.parse(encodeStatus(buildInternalErrorStatus('error executing command in container: boom'), 'status')?.toString() ?? '')).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'Internal error occurred: error executing command in container: boom',
      reason: 'InternalError',
      details: { causes: [{ message: 'error executing command in container: boom' }] },
      code: 500,
    });
  });

  it('v1–v3 carry only a failure message as text, nothing on success', () => {
    expect(encodeStatus(buildSuccessStatus(), 'text')).toBeUndefined();
    expect(encodeStatus(buildExitCodeStatus(2), 'text')?.toString()).toBe('command terminated with non-zero exit code: Error executing in Docker Container: 2');
  });
});

describe('resize channel', () => {
  it('parses json.Encoder output split anywhere, skipping garbage and incomplete sizes', () => {
    const p = new ResizeParser();
    expect(p.push('{"Width":80,"Hei')).toEqual([]);
    expect(p.push('ght":24}\n{"Width":120,"Height":40}\n')).toEqual([
      { width: 80, height: 24 },
      { width: 120, height: 40 },
    ]);
    expect(p.push('nonsense}{"Width":1}{"Width":3,"Height":4}')).toEqual([{ width: 3, height: 4 }]);
  });
});

describe('port-forward streams', () => {
  it.each([
    [{ streamtype: 'data', port: '8080' }, undefined],
    [{ streamtype: 'data' }, '"port" header is required'],
    [{ streamtype: 'data', port: 'http' }, 'unable to parse "http" as a port'],
    [{ streamtype: 'data', port: '70000' }, 'unable to parse "70000" as a port'],
    [{ streamtype: 'data', port: '0' }, 'port "0" must be > 0'],
    [{ port: '80' }, '"streamType" header is required'],
    [{ port: '80', streamtype: 'stdin' }, 'invalid stream type "stdin"'],
  ])('%j → %s', (headers, want) => {
    expect(validatePortForwardStream(headers)).toBe(want);
  });

  it('pairs by requestid, or for old clients by stream id (error = id, data = id - 2)', () => {
    expect(computeRequestId({ requestid: '7', streamtype: 'data' }, 3)).toBe('7');
    expect(computeRequestId({ streamtype: 'error' }, 5)).toBe('5');
    expect(computeRequestId({ streamtype: 'data' }, 7)).toBe('5');
  });
});

describe('WebSocket channels', () => {
  it('negotiates the first offered protocol the server allows; no offer is the binary v1 protocol', () => {
    expect(negotiateWebSocketProtocol(['v5.channel.k8s.io', 'v4.channel.k8s.io'], REMOTECOMMAND_WS_PROTOCOLS)).toBe('v5.channel.k8s.io');
    expect(negotiateWebSocketProtocol(['v4.channel.k8s.io'], REMOTECOMMAND_WS_PROTOCOLS)).toBe('v4.channel.k8s.io');
    expect(negotiateWebSocketProtocol([], REMOTECOMMAND_WS_PROTOCOLS)).toBe('');
    expect(negotiateWebSocketProtocol(['v9.channel.k8s.io'], REMOTECOMMAND_WS_PROTOCOLS)).toBeUndefined();
  });

  it('binary messages lead with the channel byte; base64 ones with an ASCII digit', () => {
    expect(encodeChannelMessage('v4.channel.k8s.io', 1, Buffer.from('ok'))).toEqual(Buffer.from([1, 0x6f, 0x6b]));
    expect(encodeChannelMessage('v4.base64.channel.k8s.io', 2, Buffer.from('ok'))).toBe('2b2s=');
    expect(decodeChannelMessage('v4.base64.channel.k8s.io', Buffer.from('0aGk='), false)).toEqual({ channel: 0, data: Buffer.from('hi') });
    expect(decodeChannelMessage('v5.channel.k8s.io', Buffer.from([255, 0]), true)).toEqual({ channel: 255, data: Buffer.from([0]) });
  });
});

describe('runRemoteCommand', () => {
  function session(ac = new AbortController()): { s: RemoteSession; statuses: V1Status[]; events: string[] } {
    const statuses: V1Status[] = [];
    const events: string[] = [];
    const stdout = new PassThrough();
    stdout.on('finish', () => events.push('stdout end'));
    stdout.resume();
    return {
      s: { stdout, signal: ac.signal, writeStatus: (st) => (events.push('status'), statuses.push(st)), close: () => events.push('close') },
      statuses,
      events,
    };
  }
  const runtime = (exec: StreamingRuntime['exec']): StreamingRuntime => ({
    assertRunning: async () => undefined,
    exec,
    attach: async () => undefined,
    portForward: async () => undefined,
  });

  it('ends the output before reporting the exit code, then closes', async () => {
    const { s, statuses, events } = session();
    await runRemoteCommand({ runtime: runtime(async () => 3), session: s, command: { kind: 'exec', containerId: 'c', command: ['x'], tty: false }, log: silentLogger });
    expect(statuses).toEqual([expect.objectContaining({ reason: 'NonZeroExitCode' })]);
    expect(events).toEqual(['stdout end', 'status', 'close']);
  });

  it('reports a runtime failure as InternalError with upstream’s wording', async () => {
    const { s, statuses } = session();
    await runRemoteCommand({
      runtime: runtime(async () => {
        throw new Error('docker exec: boom');
      }),
      session: s,
      command: { kind: 'exec', containerId: 'c', command: ['x'], tty: false },
      log: silentLogger,
    });
    expect(statuses[0]?.message).toBe('Internal error occurred: error executing command in container: docker exec: boom');
  });

  it('writes no status to a client that went away', async () => {
    const ac = new AbortController();
    const { s, statuses, events } = session(ac);
    await runRemoteCommand({
      runtime: runtime(async () => {
        ac.abort();
        throw new Error('stream destroyed');
      }),
      session: s,
      command: { kind: 'exec', containerId: 'c', command: ['x'], tty: false },
      log: silentLogger,
    });
    expect(statuses).toEqual([]);
    expect(events).toEqual(['close']);
  });
});

// gRPC probes (pkg/probe/grpc/grpc.go): `grpc.health.v1.Health/Check` with the probe's `service`, over
// plaintext, within timeoutSeconds for connect + call together. SERVING is success; any other status, a
// failed connect or a failed call is a failure with upstream's message. The two health messages are
// encoded by hand (one string field out, one enum field back), so no .proto is loaded.
import type * as GrpcJs from '@grpc/grpc-js';

// grpc-js (with protobufjs) is loaded on the first gRPC probe only: most nodes never run one, and the module's
// initialisation costs the daemon's resident memory.
let grpcModule: Promise<typeof GrpcJs> | undefined;
const loadGrpc = (): Promise<typeof GrpcJs> => (grpcModule ??= import('@grpc/grpc-js'));

export interface GrpcProbeOutcome {
  result: 'success' | 'failure';
  output: string;
}

/** grpc.health.v1.HealthCheckResponse.ServingStatus names, by number. */
const STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** HealthCheckRequest { string service = 1; } (an empty string is left out, as proto3 does). */
export function encodeHealthCheckRequest(service: string): Buffer {
  if (!service) return Buffer.alloc(0);
  const bytes = Buffer.from(service, 'utf8');
  return Buffer.concat([Buffer.from([0x0a, ...varint(bytes.length)]), bytes]);
}

/** HealthCheckResponse { ServingStatus status = 1; } → the status number (0 when absent); unknown fields skipped. */
export function decodeHealthCheckResponse(buf: Buffer): number {
  let i = 0;
  let status = 0;
  const readVarint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const v = readVarint();
      if (field === 1) status = v;
    } else if (wire === 2) {
      const len = readVarint();
      i += len;
    }
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  if (i > buf.length) throw new Error('truncated message');
  return status;
}

/** Go's time.Duration String() for whole and fractional seconds (1s, 1.5s). */
const goDuration = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : ms < 1000 ? `${ms}ms` : `${ms / 1000}s`);

/** grpc-go's status error text: `rpc error: code = NotFound desc = unknown service`. */
function goStatusError(grpc: typeof GrpcJs, err: GrpcJs.ServiceError): string {
  const name = grpc.status[err.code] ?? String(err.code);
  const code = name
    .toLowerCase()
    .split('_')
    .map((w) => (w === 'ok' ? 'OK' : w[0]!.toUpperCase() + w.slice(1)))
    .join('');
  return `rpc error: code = ${code} desc = ${err.details}`;
}

export interface GrpcProbeInput {
  host: string;
  port: number;
  service?: string;
  timeoutMs: number;
  userAgent?: string;
}

/** Runs one gRPC health check. Never throws: every error is a failure outcome. */
export async function runGrpcProbe(o: GrpcProbeInput): Promise<GrpcProbeOutcome> {
  const addr = o.host.includes(':') ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
  const deadline = Date.now() + o.timeoutMs;
  const grpc = await loadGrpc();
  const client = new grpc.Client(addr, grpc.credentials.createInsecure(), {
    'grpc.primary_user_agent': o.userAgent ?? 'kube-probe/1.20',
    'grpc.enable_retries': 0,
    'grpc.service_config_disable_resolution': 1,
  });
  try {
    // grpc.WithBlock: connect first, until the deadline.
    const connectErr = await new Promise<Error | undefined>((resolve) => client.waitForReady(deadline, (err) => resolve(err ?? undefined)));
    if (connectErr) {
      const t = goDuration(o.timeoutMs);
      return { result: 'failure', output: `timeout: failed to connect service ${JSON.stringify(addr)} within ${t}: context deadline exceeded` };
    }
    const reply = await new Promise<{ err?: GrpcJs.ServiceError; status?: number }>((resolve) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        encodeHealthCheckRequest,
        decodeHealthCheckResponse,
        o.service ?? '',
        new grpc.Metadata(),
        { deadline },
        (err, value) => resolve(err ? { err } : { status: value ?? 0 }),
      );
    });
    if (reply.err) {
      const e = reply.err;
      if (e.code === grpc.status.UNIMPLEMENTED)
        return { result: 'failure', output: `error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ${e.details}` };
      if (e.code === grpc.status.DEADLINE_EXCEEDED) return { result: 'failure', output: `timeout: health rpc did not complete within ${goDuration(o.timeoutMs)}` };
      return { result: 'failure', output: `error: health rpc probe failed: ${goStatusError(grpc, e)}` };
    }
    if (reply.status !== 1) {
      const name = STATUS_NAMES[reply.status ?? 0] ?? String(reply.status);
      return { result: 'failure', output: `service unhealthy (responded with ${JSON.stringify(name)})` };
    }
    return { result: 'success', output: 'service is serving' };
  } finally {
    client.close();
  }
}

// A real grpc.health.v1 Health server on loopback (@grpc/grpc-js), for probe tests. Statuses are set per
// service name ('' = the server as a whole); an unknown service answers NOT_FOUND, as grpc-go's health
// server does. `delayMs` holds every answer back (to test probe timeouts).
import * as grpc from '@grpc/grpc-js';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const NUM: Record<ServingStatus, number> = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 };

// An object, not the bare string: grpc-js takes a falsy request ('') for a missing one.
function decodeRequest(buf: Buffer): { service: string } {
  // HealthCheckRequest { string service = 1; } with a one-byte length is all the tests send.
  if (buf.length === 0) return { service: '' };
  if (buf[0] !== 0x0a) throw new Error('unexpected field');
  return { service: buf.subarray(2, 2 + buf[1]!).toString('utf8') };
}

const encodeResponse = (status: number): Buffer => (status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status]));

export class HealthServer {
  readonly statuses = new Map<string, ServingStatus>([['', 'SERVING']]);
  delayMs = 0;
  port = 0;
  private readonly server = new grpc.Server();

  async start(host = '127.0.0.1'): Promise<number> {
    this.server.addService(
      {
        Check: {
          path: '/grpc.health.v1.Health/Check',
          requestStream: false,
          responseStream: false,
          requestSerialize: (r: { service: string }) => Buffer.from(r.service),
          requestDeserialize: decodeRequest,
          responseSerialize: encodeResponse,
          responseDeserialize: (b: Buffer) => b[1] ?? 0,
        },
      },
      {
        Check: (call: grpc.ServerUnaryCall<{ service: string }, number>, cb: grpc.sendUnaryData<number>) => {
          const answer = (): void => {
            const s = this.statuses.get(call.request.service);
            if (s === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
            else cb(null, NUM[s]);
          };
          if (this.delayMs > 0) setTimeout(answer, this.delayMs);
          else answer();
        },
      },
    );
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    return this.port;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

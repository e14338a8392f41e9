// The gRPC benchmark's pieces: bench.proto loaded with @grpc/proto-loader, and the plain grpc-js
// upstream (lib/grpc-upstream.ts) started in a child process of its own.
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { forkTs, nextMessage, type Upstream } from './load.js'

const PROTO = fileURLToPath(new URL('./bench.proto', import.meta.url))
const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true })
const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { bench: { Ledger: grpc.ServiceClientConstructor } } }
export const LedgerClient = pkg.weft.bench.Ledger
export const LedgerService: grpc.ServiceDefinition = LedgerClient.service
export { grpc }

export interface Entry { id: string; from: string; amount: number }
/** The client side of bench.proto's Ledger (what loadPackageDefinition's constructor makes). */
export interface Ledger {
  Get(req: { id: string }, cb: (err: grpc.ServiceError | null, res: Entry) => void): grpc.ClientUnaryCall
  Get(req: { id: string }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Entry) => void): grpc.ClientUnaryCall
  close(): void
}

/** The name the upstream answers with in `from`. */
export const UPSTREAM_NAME = 'up'

/** Starts lib/grpc-upstream.ts in its own process: one grpc-js Server bound to `ports` ports on 127.0.0.1. */
export async function startGrpcUpstream(ports: number): Promise<Upstream> {
  const child = forkTs(fileURLToPath(new URL('./grpc-upstream.ts', import.meta.url)), ['--ports', String(ports)])
  const bound = await nextMessage(child, 15_000, (m) => (m as { ports?: number[] }).ports)
  return {
    ports: bound,
    cpuMicros: () => {
      const answer = nextMessage(child, 5_000, (m) => (m as { cpu?: NodeJS.CpuUsage }).cpu)
      child.send('cpu')
      return answer.then((cpu) => cpu.user + cpu.system)
    },
    stop: () => void child.kill('SIGTERM'),
  }
}

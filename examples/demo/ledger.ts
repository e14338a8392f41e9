// The "ledger" service, the demo's third hop: two gRPC instances, ledger-a and ledger-b, in the
// demo's own process, each with its own mesh (service "ledger") registered with the control daemon
// and a server from mesh.grpc.server() on 127.0.0.1:0. Ledger.Post writes an entry and returns a
// receipt; ledger-b answers UNAVAILABLE to
// 10 % of posts, which the payments meshes retry on the other instance. Each instance counts what
// it saw, including the caller chain (weft-caller) and the deadline left that came with each call.
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { fileURLToPath } from 'node:url'
import { createMesh, currentContext, type Logger, type Mesh } from '../../src/index.js'
import type { LedgerEndpoint } from './instances.js'

const PROTO = fileURLToPath(new URL('./ledger.proto', import.meta.url))
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { longs: Number, defaults: true })) as unknown as {
  weft: { demo: { Ledger: grpc.ServiceClientConstructor } }
}
/** The generated client constructor: `mesh.grpc.client(LedgerClient, 'ledger')` (payments.ts). */
export const LedgerClient = pkg.weft.demo.Ledger

export interface Entry {
  cart: string
  amount: number
  currency: string
  payments: string
}
export interface Receipt {
  id: string
  ledger: string
  traceId: string
}
/** The Ledger client's one method, typed (loadPackageDefinition clients are untyped). */
export interface LedgerApi {
  Post(entry: Entry, callback: (err: grpc.ServiceError | null, receipt: Receipt) => void): grpc.ClientUnaryCall
  close(): void
}

export function post(client: LedgerApi, entry: Entry): Promise<Receipt> {
  return new Promise((resolve, reject) => client.Post(entry, (err, receipt) => (err ? reject(err) : resolve(receipt))))
}

export interface LedgerInstance extends LedgerEndpoint {
  /** Share of posts (0..1) answered UNAVAILABLE instead of written. */
  failRate: number
  /** Posts that reached the handler, UNAVAILABLE ones included. */
  calls: number
  unavailable: number
  /** weft-caller values the handler received. */
  callers: Map<string, number>
  /** Deadline left (ms) when the handler ran. */
  deadlineLeft: number[]
}

export interface Ledger {
  meshes: Mesh[]
  instances: LedgerInstance[]
  /** Both meshes' Prometheus text. */
  metrics(): Promise<string>
  close(): Promise<void>
}

export const LEDGERS = [
  { name: 'ledger-a', failRate: 0 },
  { name: 'ledger-b', failRate: 0.1 },
] as const

export async function startLedger(control: { url: string; token: string }, logger: Logger): Promise<Ledger> {
  const instances: LedgerInstance[] = []
  const meshes: Mesh[] = []
  try {
    for (const { name, failRate } of LEDGERS) {
      // No load shedding: this process is also the demo's client and checkout, so its event-loop
      // load says little about the ledger, and shedding would blur the UNAVAILABLEs the demo counts.
      const mesh = await createMesh({ service: 'ledger', control: control.url, token: control.token, labels: { instance: name }, logger, inbound: { shedding: false } })
      meshes.push(mesh)
      const self: LedgerInstance = { name, address: '', failRate, calls: 0, unavailable: 0, callers: new Map(), deadlineLeft: [] }
      const server = mesh.grpc.server()
      server.addService(LedgerClient.service, {
        Post(call: grpc.ServerUnaryCall<Entry, Receipt>, callback: grpc.sendUnaryData<Receipt>) {
          self.calls++
          const caller = String(call.metadata.get('weft-caller')[0] ?? '')
          self.callers.set(caller, (self.callers.get(caller) ?? 0) + 1)
          // The mesh's interceptor runs the handler inside the request context: trace and deadline.
          const ctx = currentContext()
          if (ctx && Number.isFinite(ctx.deadline)) self.deadlineLeft.push(ctx.remainingMs())
          // Writing the entry: well under a millisecond to 2 ms.
          setTimeout(() => {
            if (Math.random() < failRate) {
              self.unavailable++
              return callback({ code: grpc.status.UNAVAILABLE, details: `${name}: write queue full` })
            }
            callback(null, { id: `${name}/${call.request.cart}`, ledger: name, traceId: ctx?.traceId ?? '' })
          }, Math.random() * 2)
        },
      })
      // Binds, and registers 127.0.0.1:port as an endpoint of "ledger" with the daemon.
      const { port } = await mesh.grpc.listen(server, { port: 0, host: '127.0.0.1' })
      self.address = `127.0.0.1:${port}`
      instances.push(self)
    }
  } catch (err) {
    await Promise.all(meshes.map((m) => m.close()))
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    meshes,
    instances,
    metrics: async () => (await Promise.all(meshes.map((m) => m.metrics()))).join('\n'),
    // mesh.close() deregisters, drains the gRPC server (GOAWAY, in-flight posts finish), then stops it.
    close: () => (closing ??= Promise.all(meshes.map((m) => m.close())).then(() => {})),
  }
}

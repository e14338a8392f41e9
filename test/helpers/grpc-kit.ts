// Shared pieces of the gRPC tests: the Ledger proto loaded with @grpc/proto-loader, real grpc-js
// servers on 127.0.0.1 port 0 (plain, or meshed through mesh.grpc.server), and promise helpers.
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { after } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'

const PROTO = fileURLToPath(new URL('../fixtures/ledger.proto', import.meta.url))
const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true })
const pkg = grpc.loadPackageDefinition(def) as unknown as { weft: { test: { Ledger: grpc.ServiceClientConstructor } } }
export const LedgerClient = pkg.weft.test.Ledger
export const LedgerService: grpc.ServiceDefinition = LedgerClient.service
export { grpc }

export interface Ledger {
  Get(req: { id: string; delay_ms?: number }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Entry) => void): grpc.ClientUnaryCall
  List(req: { id: string }, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<Entry>
  Record(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { count: number; from: string }) => void): grpc.ClientWritableStream<Entry>
  Chat(md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<Entry, Entry>
  close(): void
}
export interface Entry { id: string; from: string; amount: number }

/** A Ledger that answers with its own name in `from`; `hooks.onCall` sees every call first. */
export function ledgerImpl(name: string, hooks: { onCall?: (method: string, call: any) => void } = {}): grpc.UntypedServiceImplementation {
  return {
    Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) {
      hooks.onCall?.('Get', call)
      const answer = (): void => cb(null, { id: call.request.id, from: name, amount: 1 })
      if (call.request.delay_ms > 0) setTimeout(answer, call.request.delay_ms)
      else answer()
    },
    List(call: grpc.ServerWritableStream<any, any>) {
      hooks.onCall?.('List', call)
      for (let i = 0; i < 3; i++) call.write({ id: `${call.request.id}-${i}`, from: name, amount: i })
      call.end()
    },
    Record(call: grpc.ServerReadableStream<any, any>, cb: grpc.sendUnaryData<any>) {
      hooks.onCall?.('Record', call)
      let count = 0
      call.on('data', () => count++)
      call.on('end', () => cb(null, { count, from: name }))
    },
    Chat(call: grpc.ServerDuplexStream<any, any>) {
      hooks.onCall?.('Chat', call)
      call.on('data', (e: Entry) => call.write({ ...e, from: name }))
      call.on('end', () => call.end())
    },
  }
}

export interface Running {
  server: grpc.Server
  port: number
  address: string
}

/** A plain grpc-js server (no mesh) on 127.0.0.1:0. */
export function startLedger(impl: grpc.UntypedServiceImplementation, options: grpc.ServerOptions = {}): Promise<Running> {
  const server = new grpc.Server(options)
  server.addService(LedgerService, impl)
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err)
      resolve({ server, port, address: `127.0.0.1:${port}` })
    })
  })
}

/** A server behind `mesh` (mesh.grpc.server + mesh.grpc.listen) on 127.0.0.1:0. */
export async function startMeshedLedger(mesh: Mesh, impl: grpc.UntypedServiceImplementation): Promise<Running> {
  const server = mesh.grpc.server()
  server.addService(LedgerService, impl)
  const { port } = await mesh.grpc.listen(server, { port: 0, host: '127.0.0.1' })
  return { server, port, address: `127.0.0.1:${port}` }
}

/**
 * `mesh`'s client of the 'ledger' service; after the test it is closed, then `mesh`, then each of
 * `andThen` (a server's mesh, say) in order.
 */
export function meshedLedgerClient(t: { after(fn: () => Promise<void>): void }, mesh: Mesh, ...andThen: Mesh[]): Ledger {
  const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await mesh.close()
    for (const m of andThen) await m.close()
  })
  return client
}

export function ledgerService(name: string, endpoints: { address: string; labels?: Record<string, string> }[], spec: Record<string, unknown> = {}) {
  return { apiVersion: 'weft/v1', kind: 'Service', metadata: { name }, spec: { protocol: 'grpc', endpoints, ...spec } }
}

export function get(client: Ledger, req: { id: string; delay_ms?: number }, opts: grpc.CallOptions = {}, md = new grpc.Metadata()): Promise<Entry> {
  return new Promise((resolve, reject) => client.Get(req, md, opts, (err, res) => (err ? reject(err) : resolve(res))))
}

export function collect<T>(stream: NodeJS.ReadableStream): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = []
    stream.on('data', (d: T) => out.push(d))
    stream.on('error', reject)
    stream.on('end', () => resolve(out))
  })
}

export function record(client: Ledger, n: number, size = 10, opts: grpc.CallOptions = {}): Promise<{ count: number; from: string }> {
  return new Promise((resolve, reject) => {
    const w = client.Record(new grpc.Metadata(), opts, (err, res) => (err ? reject(err) : resolve(res)))
    for (let i = 0; i < n; i++) w.write({ id: 'x'.repeat(size), from: 'client', amount: i })
    w.end()
  })
}

export function chat(client: Ledger, ids: string[]): Promise<Entry[]> {
  const d = client.Chat()
  const p = collect<Entry>(d)
  for (const id of ids) d.write({ id, from: 'client', amount: 0 })
  d.end()
  return p
}

/**
 * One test file's gRPC fixture: plain ledgers and meshed clients, all stopped after the file's
 * tests (newest first, so clients close before the servers they call).
 */
export function grpcFixture(): {
  stop(fn: () => unknown): void
  ledger(impl: grpc.UntypedServiceImplementation): Promise<Running>
  clientOf(endpoints: Running[], spec?: Record<string, unknown>): Promise<{ mesh: Mesh; client: Ledger }>
} {
  const stops: (() => unknown)[] = []
  after(async () => {
    for (const s of stops.reverse()) await s()
  })
  const quiet = { info() {}, warn() {}, error() {} }
  return {
    stop: (fn) => void stops.push(fn),
    async ledger(impl) {
      const l = await startLedger(impl)
      stops.push(() => l.server.forceShutdown())
      return l
    },
    async clientOf(endpoints, spec = {}) {
      const mesh = await createMesh({ service: 'payments', logger: quiet, config: [ledgerService('ledger', endpoints.map((e) => ({ address: e.address })), spec)] })
      const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
      stops.push(async () => {
        client.close()
        await mesh.close()
      })
      return { mesh, client }
    },
  }
}

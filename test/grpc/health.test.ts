// The standard gRPC health service on mesh.grpc.server() (src/grpc/health.ts): gRPC's /readyz,
// asked by a plain grpc-js client the way a load balancer or Kubernetes' gRPC probe asks it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'
import { decodeHealthRequest, encodeHealthRequest, encodeHealthResponse, HEALTH_DEFINITION } from '../../src/grpc/health.js'
import { metricValue, quietMesh } from '../helpers/mesh.js'
import { get, grpc, ledgerImpl, LedgerClient, LedgerService, type Ledger } from '../helpers/grpc-kit.js'

const HealthClient = grpc.makeGenericClientConstructor(HEALTH_DEFINITION, 'Health')
type Health = InstanceType<typeof HealthClient> & {
  Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res: { status: number }) => void): void
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: number }>
}
const check = (h: Health, service: string) => new Promise<number>((resolve, reject) => h.Check({ service }, (err, res) => (err ? reject(err) : resolve(res.status))))

async function meshedLedger(t: { after(fn: () => unknown): void }, config: object[] = [], extra: Record<string, unknown> = {}, add?: (s: grpc.Server) => void) {
  const mesh = await quietMesh([{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'ledger' }, spec: { protocol: 'grpc' } }, ...config], { service: 'ledger', ...extra })
  const server = mesh.grpc.server()
  server.addService(LedgerService, ledgerImpl('ledger'))
  add?.(server)
  const { port } = await mesh.grpc.listen(server, { port: 0, host: '127.0.0.1' })
  const health = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Health
  t.after(async () => {
    health.close()
    await mesh.close()
  })
  return { mesh, port, health }
}

test('Check: SERVING for the server ("") and each service it holds; an unknown service is NOT_FOUND; not measured as an RPC', async (t) => {
  const { mesh, health } = await meshedLedger(t)
  assert.equal(await check(health, ''), 1)
  assert.equal(await check(health, 'weft.test.Ledger'), 1)
  const err = await check(health, 'weft.test.Nope').catch((e: grpc.ServiceError) => e)
  assert.equal((err as grpc.ServiceError).code, grpc.status.NOT_FOUND)
  assert.equal(metricValue(await mesh.metrics(), 'rpc_server_duration_seconds_count'), 0, 'answered before the stack, as /readyz')
})

test('Watch: SERVING, then NOT_SERVING when the mesh drains, then the stream ends', async (t) => {
  const { mesh, health } = await meshedLedger(t)
  const seen: number[] = []
  const stream = health.Watch({ service: '' })
  const ended = new Promise<void>((resolve) => {
    stream.on('data', (r: { status: number }) => seen.push(r.status))
    stream.on('end', resolve)
    stream.on('error', () => resolve())
  })
  while (seen.length === 0) await new Promise((r) => setTimeout(r, 10))
  assert.deepEqual(seen, [1])
  await mesh.close()
  await ended
  assert.deepEqual(seen, [1, 2])
  const unknown: number[] = []
  const { health: h2 } = await meshedLedger(t)
  const s2 = h2.Watch({ service: 'weft.test.Nope' })
  s2.on('error', () => {}) // the CANCELLED our own cancel() brings
  await new Promise<void>((resolve) => s2.on('data', (r: { status: number }) => {
    unknown.push(r.status)
    s2.cancel()
    resolve()
  }))
  assert.deepEqual(unknown, [3], 'SERVICE_UNKNOWN')
})

test('health is answered before authorization: a policy that denies every call leaves the probe SERVING', async (t) => {
  const denyAll = { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-all' }, spec: { service: 'ledger', action: 'DENY', rules: [{}] } }
  const { port, health } = await meshedLedger(t, [denyAll])
  const client = new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Ledger
  t.after(() => client.close())
  const err = await get(client, { id: 'a' }).catch((e: grpc.ServiceError) => e)
  assert.equal((err as grpc.ServiceError).code, grpc.status.PERMISSION_DENIED)
  assert.equal(await check(health, ''), 1)
})

test('an application\'s own grpc.health.v1.Health replaces the mesh\'s; inbound.health: false turns it off', async (t) => {
  const own = {
    Check: (_call: unknown, cb: grpc.sendUnaryData<{ status: number }>) => cb(null, { status: 2 }),
    Watch: (call: grpc.ServerWritableStream<unknown, { status: number }>) => call.end(),
  }
  const { health } = await meshedLedger(t, [], {}, (s) => s.addService(HEALTH_DEFINITION, own))
  assert.equal(await check(health, ''), 2)
  const { health: off } = await meshedLedger(t, [], { inbound: { health: false } })
  const err = await check(off, '').catch((e: grpc.ServiceError) => e)
  assert.equal((err as grpc.ServiceError).code, grpc.status.UNIMPLEMENTED)
})

test('the health messages: unknown fields skipped, a malformed request refused, responses one field', () => {
  assert.equal(decodeHealthRequest(Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63])), 'abc')
  // field 2 varint 150, field 3 fixed64, then service "x"
  assert.equal(decodeHealthRequest(Buffer.from([0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x01, 0x78])), 'x')
  assert.equal(decodeHealthRequest(Buffer.alloc(0)), '')
  for (const bad of [[0x0a, 0x05, 0x61], [0x0a], [0x0b], [0x19, 1, 2], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80]]) {
    assert.throws(() => decodeHealthRequest(Buffer.from(bad)), Error, JSON.stringify(bad))
  }
  assert.deepEqual([...encodeHealthResponse(1)], [0x08, 0x01])
  assert.deepEqual([...encodeHealthResponse(0)], [])
  assert.equal(decodeHealthRequest(encodeHealthRequest('weft.test.Ledger')), 'weft.test.Ledger')
  assert.equal(encodeHealthRequest('').length, 0)
  // What a caller sends is untrusted: 20,000 random messages either decode or throw an Error,
  // never anything else, and never read past the buffer.
  let seed = 7
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  for (let n = 0; n < 20_000; n++) {
    const buf = Buffer.from(Array.from({ length: Math.floor(next() * 24) }, () => Math.floor(next() * 256)))
    try {
      assert.equal(typeof decodeHealthRequest(buf), 'string')
    } catch (err) {
      assert.ok(err instanceof Error && !(err instanceof assert.AssertionError), String(err))
    }
  }
})

test('createMesh without @grpc/grpc-js loaded keeps working (the health module only imports its types)', async () => {
  const mesh: Mesh = await createMesh({ service: 'solo', logger: { info() {}, warn() {}, error() {} } })
  await mesh.close()
})

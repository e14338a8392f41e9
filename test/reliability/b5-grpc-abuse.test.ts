// RELIABILITY B5, gRPC: HTTP/2 abuse against servers from mesh.grpc.server(), on real ports on
// 127.0.0.1 — bound by grpc-js (no daemon) and the mesh's own front door (under a daemon,
// PERMISSIVE, so a plaintext attacker and an mTLS mesh caller share the port).
//   - Rapid Reset (CVE-2023-44487): one raw node:http2 connection opens thousands of streams, each
//     HEADERS then RST_STREAM(CANCEL). The server closes that connection (GOAWAY) after a threshold
//     (node's nghttp2 reset limiter: ~1000), and a meshed grpc-js client on another connection gets
//     every answer right, during the flood and after it. Nothing here measures time; the number of
//     calls that completed is printed.
//   - Metadata: a header list over 64 KiB (one big value, or many fields), or more entries than
//     node:http2 keeps, is answered RESOURCE_EXHAUSTED; 'grpc.max_metadata_size' raises the limit;
//     heap after GC is back near its baseline after 200 oversized calls.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'
import { DEFAULT_MAX_METADATA_SIZE } from '../../src/grpc/server-limits.js'
import { grpcTraffic, rapidReset, type FloodResult } from '../helpers/abuse.js'
import { applyPolicy, eventually, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { get, grpc, grpcFixture, LedgerClient, ledgerImpl, LedgerService, meshedLedgerClient, startMeshedLedger, type Ledger, type Running } from '../helpers/grpc-kit.js'
import { heapLimit, mb, sample } from '../helpers/leak-probe.js'

const GET_PATH = '/weft.test.Ledger/Get'
const FLOOD_MAX = 5000
const quiet = { info() {}, warn() {}, error() {} }
const fx = grpcFixture()

/** A Ledger served by its own mesh (mesh.grpc.server + listen, no daemon) on 127.0.0.1:0. */
async function meshedLedger(options: grpc.ServerOptions = {}): Promise<Running & { mesh: Mesh; calls: () => number }> {
  const mesh = await createMesh({ service: 'ledger', logger: quiet, config: [] })
  fx.stop(() => mesh.close())
  let calls = 0
  const server = mesh.grpc.server(options)
  server.addService(LedgerService, ledgerImpl('ledger-a', { onCall: () => calls++ }))
  const { port } = await mesh.grpc.listen(server, { port: 0, host: '127.0.0.1' })
  return { server, mesh, port, address: `127.0.0.1:${port}`, calls: () => calls }
}

/** A plain grpc-js client on a connection of its own (no subchannel shared with other clients). */
function ownConnection(address: string): Ledger {
  const client = new LedgerClient(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as Ledger
  fx.stop(() => client.close())
  return client
}

function metadata(fields: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata()
  for (const [k, v] of Object.entries(fields)) md.set(k, v)
  return md
}

/** `n` metadata entries of `size` bytes each. */
function spread(n: number, size: number): grpc.Metadata {
  return metadata(Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-m${i}`, 'a'.repeat(size)])))
}

async function exhausted(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, `${what}: ${err.message}`)
    return true
  })
}

/** The flood, with well-behaved traffic through `client` running across it and 50 calls after it. */
async function floodAlongside(t: { diagnostic(m: string): void }, port: number, client: Ledger): Promise<FloodResult> {
  assert.equal((await get(client, { id: 'before' })).id, 'before')
  const traffic = grpcTraffic(client)
  const flood = await rapidReset(port, GET_PATH, FLOOD_MAX)
  for (let i = 0; i < 50; i++) assert.equal((await get(client, { id: `after-${i}` })).id, `after-${i}`, 'a call after the flood')
  const { ok, failed } = await traffic.stop()
  t.diagnostic(`flood: ${flood.sent} streams reset before the server closed the connection (GOAWAY code ${flood.goawayCode}, session error ${flood.errorCode}); ${ok} well-behaved calls completed alongside, ${failed.length} failed`)
  assert.deepEqual(failed, [], 'no well-behaved call failed during the flood')
  assert.ok(ok > 0, 'well-behaved calls completed while the flood ran')
  return flood
}

function assertClosedByServer(flood: FloodResult): void {
  assert.notEqual(flood.goawayCode, undefined, 'the server sent GOAWAY on the abusive connection')
  assert.ok(flood.closed, 'the abusive connection is closed')
  assert.ok(flood.sent < FLOOD_MAX, `closed after a threshold, before the flood's ${FLOOD_MAX} streams (at ${flood.sent})`)
}

test('Rapid Reset on a port grpc-js binds: the flooding connection gets GOAWAY and is closed; a meshed client on another connection gets every answer, during and after', async (t) => {
  const ledger = await meshedLedger()
  const { client } = await fx.clientOf([ledger])
  const flood = await floodAlongside(t, ledger.port, client)
  assertClosedByServer(flood)
  // A new connection from anyone is served as before: the limiter closed one session, not the port.
  assert.equal((await get(ownConnection(ledger.address), { id: 'new' })).id, 'new')
})

test('Rapid Reset on the mesh\'s front door (daemon, PERMISSIVE): the plaintext flooding connection gets GOAWAY and is closed; a meshed caller over mTLS gets every answer; oversized metadata there is RESOURCE_EXHAUSTED too', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const ledger = await controlMesh(d, 'ledger')
  const { port } = await startMeshedLedger(ledger, ledgerImpl('ledger-a'))
  const payments = await controlMesh(d, 'payments')
  const client = meshedLedgerClient(t, payments, ledger)
  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: ledger-mtls }\nspec: { service: ledger, mtls: PERMISSIVE }\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  await eventually(async () => ledger.identity.serverMode() === 'PERMISSIVE', 10_000, 'ledger PERMISSIVE')
  await waitEndpoints(payments, 'ledger', 1)

  const flood = await floodAlongside(t, port, client)
  assertClosedByServer(flood)

  const plain = ownConnection(`127.0.0.1:${port}`)
  assert.equal((await get(plain, { id: 'small' })).id, 'small', 'a plaintext call with small metadata is served (PERMISSIVE)')
  await exhausted(get(plain, { id: 'big' }, {}, metadata({ 'x-big': 'a'.repeat(70 * 1024) })), 'a 70 KiB metadata value through the front door')
})

test('metadata over 64 KiB — one value or spread over fields — and more entries than node:http2 keeps get RESOURCE_EXHAUSTED; the server keeps serving', async () => {
  const ledger = await meshedLedger()
  const client = ownConnection(ledger.address)
  assert.equal(DEFAULT_MAX_METADATA_SIZE, 64 * 1024)
  assert.equal((await get(client, { id: 'small' }, {}, metadata({ 'x-ok': 'a'.repeat(32 * 1024) }))).id, 'small', '32 KiB of metadata is served')
  assert.equal((await get(client, { id: 'entries' }, {}, spread(100, 8))).id, 'entries', '100 entries are served')
  const before = ledger.calls()
  await exhausted(get(client, { id: 'one' }, {}, metadata({ 'x-big': 'a'.repeat(65 * 1024) })), 'one 65 KiB value')
  await exhausted(get(client, { id: 'spread' }, {}, spread(25, 8 * 1024)), '200 KiB over 25 fields')
  await exhausted(get(client, { id: 'many' }, {}, spread(1001, 1)), '1001 entries')
  assert.equal(ledger.calls(), before, 'the handler never ran for a refused call')
  assert.equal((await get(client, { id: 'again' })).id, 'again', 'the same client is served again afterwards')
  // One field over 64 KiB is past nghttp2's own HPACK limit: a COMPRESSION_ERROR reset (INTERNAL
  // on the caller) before node's count applies; refused all the same, and others are served.
  await assert.rejects(get(ownConnection(ledger.address), { id: 'mib' }, {}, metadata({ 'x-big': 'a'.repeat(1024 * 1024) })), (err: grpc.ServiceError) => {
    assert.ok(err.code === grpc.status.RESOURCE_EXHAUSTED || err.code === grpc.status.INTERNAL, err.message)
    return true
  })
  assert.equal(ledger.calls(), before + 1, 'the handler never ran for the 1 MiB call')
  assert.equal((await get(client, { id: 'still' })).id, 'still', 'another connection is served after it')
})

test('\'grpc.max_metadata_size\' overrides the limit; an invalid value is refused', async () => {
  // 128 KiB: a larger header block than ~9 HTTP/2 frames gets the whole connection closed by
  // nghttp2's CONTINUATION limit (node ≥ 20.12.1) whatever this limit says.
  const ledger = await meshedLedger({ 'grpc.max_metadata_size': 128 * 1024 })
  const client = ownConnection(ledger.address)
  assert.equal((await get(client, { id: 'big' }, {}, spread(12, 8 * 1024))).id, 'big', '96 KiB under a 128 KiB limit is served')
  await exhausted(get(client, { id: 'huge' }, {}, spread(17, 8 * 1024)), '136 KiB over a 128 KiB limit')
  const mesh = await createMesh({ service: 'x', logger: quiet, config: [] })
  fx.stop(() => mesh.close())
  assert.throws(() => mesh.grpc.server({ 'grpc.max_metadata_size': -1 }), { code: 'WEFT_ERR_INVALID_ARG' })
  assert.throws(() => mesh.grpc.server({ 'grpc.max_metadata_size': '64k' }), { code: 'WEFT_ERR_INVALID_ARG' })
})

test('200 calls with oversized metadata: heap after GC within +10%/+2 MB of the baseline', async (t) => {
  const ledger = await meshedLedger()
  const client = ownConnection(ledger.address)
  const oversized = (): grpc.Metadata => metadata({ 'x-big': 'a'.repeat(70 * 1024) })
  const batch = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await exhausted(get(client, { id: `o${i}` }, {}, oversized()), `oversized call ${i}`)
  }
  await batch(20)
  const base = await sample()
  await batch(200)
  assert.equal((await get(client, { id: 'after' })).id, 'after')
  const end = await sample()
  t.diagnostic(`heapUsed ${mb(base.heapUsed)} -> ${mb(end.heapUsed)} (limit ${mb(heapLimit(base.heapUsed))}); rss ${mb(base.rss)} -> ${mb(end.rss)}`)
  assert.ok(end.heapUsed <= heapLimit(base.heapUsed), `heapUsed within +10%/+2 MB of baseline (${mb(base.heapUsed)} -> ${mb(end.heapUsed)})`)
})

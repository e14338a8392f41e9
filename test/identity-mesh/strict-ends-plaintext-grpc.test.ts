// gRPC under a daemon and plaintext in STRICT (identity issue, "mTLS modes"; RELIABILITY S5): a
// plaintext grpc-js client refused by a STRICT server gets UNAUTHENTICATED (the error table's gRPC
// status for WEFT_ERR_UNAUTHENTICATED) with weft-error-code in its metadata and a message naming
// the mode, not a bare UNAVAILABLE; a client that does not speak HTTP/2, or that never calls, is
// closed. And a mode change to STRICT reaches open plaintext sessions: each is counted
// ("mode-strict") and drained — a GOAWAY, the call in flight completes — and the client's next
// call is refused like any new plaintext connection. Real servers on 127.0.0.1, a real daemon.
import assert from 'node:assert/strict'
import { connect as h2connect } from 'node:http2'
import { connect } from 'node:net'
import { test } from 'node:test'
import { applyPolicy, eventually, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints, type LoggedMesh } from '../helpers/control-kit.js'
import { get, grpc, LedgerClient, LedgerService, type Ledger } from '../helpers/grpc-kit.js'
import { metricValue } from '../helpers/mesh.js'

type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE'

function modeYaml(mode: Mode): string {
  return `apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: ledger-mtls }\nspec: { service: ledger, mtls: ${mode} }\n`
}

async function setMode(d: TestDaemon, mesh: LoggedMesh | undefined, mode: Mode): Promise<void> {
  const applied = await applyPolicy(d, modeYaml(mode))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  if (mesh) await eventually(async () => mesh.identity.serverMode() === mode, 10_000, `ledger's mode ${mode}`)
}

async function refusals(mesh: LoggedMesh, reason: string): Promise<number> {
  return metricValue(await mesh.metrics(), 'weft_mtls_connections_refused_total', { reason })
}

/**
 * ledger, whose Get answers at once, or (id "hold") once release() is called; `peers` are the
 * client addresses (ip:port) calls came from, so one connection shows as one peer.
 */
async function ledgerServer(d: TestDaemon): Promise<{ ledger: LoggedMesh; port: number; entered: Promise<void>; release(): void; peers: string[] }> {
  const ledger = await controlMesh(d, 'ledger')
  let release!: () => void
  const released = new Promise<void>((r) => (release = r))
  let entered!: () => void
  const enteredP = new Promise<void>((r) => (entered = r))
  const peers: string[] = []
  const server = ledger.grpc.server()
  server.addService(LedgerService, {
    async Get(call: grpc.ServerUnaryCall<{ id: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      peers.push(call.getPeer())
      if (call.request.id === 'hold') {
        entered()
        await released
      }
      cb(null, { id: call.request.id, from: 'ledger-a', amount: 1 })
    },
  })
  const { port } = await ledger.grpc.listen(server, { port: 0, host: '127.0.0.1' })
  return { ledger, port, entered: enteredP, release, peers }
}

/** A plaintext grpc-js client on its own connection (no subchannel shared with other clients). */
function plainClient(port: number): Ledger {
  return new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as Ledger
}

async function unauthenticated(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.message)
    assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_UNAUTHENTICATED')
    assert.match(err.details, /requires mTLS \(mode STRICT\)/)
    return true
  })
}

test('STRICT: a plaintext grpc-js client gets UNAUTHENTICATED with weft-error-code WEFT_ERR_UNAUTHENTICATED and a message naming the mode, every call; a meshed caller is served', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const { ledger, port, peers } = await ledgerServer(d)
  const payments = await controlMesh(d, 'payments')
  const meshed = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const plain = plainClient(port)
  t.after(async () => {
    meshed.close()
    plain.close()
    await payments.close()
    await ledger.close()
  })
  assert.equal(ledger.identity.serverMode(), 'STRICT')
  await waitEndpoints(payments, 'ledger', 1)
  assert.equal((await get(meshed, { id: 'meshed' })).from, 'ledger-a')

  await unauthenticated(get(plain, { id: 'plain-1' }, { deadline: Date.now() + 5000 }))
  // Two calls at once on one refused connection: each gets its own answer.
  await Promise.all([
    unauthenticated(get(plain, { id: 'plain-2' }, { deadline: Date.now() + 5000 })),
    unauthenticated(get(plain, { id: 'plain-3' }, { deadline: Date.now() + 5000 })),
  ])
  assert.equal(peers.length, 1, 'the handler ran for the meshed call only')
  assert.ok(await refusals(ledger, 'plaintext') >= 2, 'each refused plaintext connection counted')
})

test('STRICT: a plaintext client that does not speak HTTP/2 is closed; one that speaks HTTP/2 but never calls is closed too (bounded)', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const { ledger, port } = await ledgerServer(d)
  t.after(() => ledger.close())

  const http1 = connect(port, '127.0.0.1')
  http1.on('error', () => {})
  let reply = ''
  http1.on('data', (b: Buffer) => (reply += b.toString('latin1')))
  http1.write('GET / HTTP/1.1\r\nhost: ledger\r\n\r\n')
  await new Promise<void>((r) => http1.once('close', () => r()))
  assert.doesNotMatch(reply, /^HTTP\/1/, 'no HTTP/1 answer: the connection is just closed')

  // The HTTP/2 preface and SETTINGS, then nothing: the refused session is closed by the server.
  const idle = h2connect(`http://127.0.0.1:${port}`)
  idle.on('error', () => {})
  await new Promise<void>((r) => idle.once('close', () => r()))
  assert.equal(await refusals(ledger, 'plaintext'), 2)
})

test('PERMISSIVE → STRICT: an open plaintext gRPC session is drained (the call in flight completes, on the same connection), an idle one closed; both counted; each client\'s next call gets UNAUTHENTICATED', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  await setMode(d, undefined, 'PERMISSIVE')
  const { ledger, port, entered, release, peers } = await ledgerServer(d)
  const busy = plainClient(port)
  const idle = plainClient(port)
  t.after(async () => {
    release()
    busy.close()
    idle.close()
    await ledger.close()
  })
  await eventually(async () => ledger.identity.serverMode() === 'PERMISSIVE', 10_000, 'ledger in PERMISSIVE')

  assert.equal((await get(idle, { id: 'idle-1' })).from, 'ledger-a')
  assert.equal((await get(busy, { id: 'busy-1' })).from, 'ledger-a')
  const inFlight = get(busy, { id: 'hold' })
  await entered
  assert.equal(await refusals(ledger, 'mode-strict'), 0)

  await setMode(d, ledger, 'STRICT')
  await eventually(async () => (await refusals(ledger, 'mode-strict')) === 2 || undefined, 10_000, 'both plaintext sessions ended')
  release()
  assert.equal((await inFlight).from, 'ledger-a', 'the call in flight at the switch completes')
  assert.equal(peers.length, 3)
  assert.equal(peers[1], peers[2], 'the held call came on the busy client\'s first connection')

  await unauthenticated(get(busy, { id: 'busy-2' }, { deadline: Date.now() + 5000 }))
  await unauthenticated(get(idle, { id: 'idle-2' }, { deadline: Date.now() + 5000 }))
  assert.equal(peers.length, 3, 'the handler never ran for a refused call')
  assert.ok(await refusals(ledger, 'plaintext') >= 2, 'the clients\' new connections were refused as plaintext')
  assert.equal(await refusals(ledger, 'mode-strict'), 2, 'each ended session counted once')
  assert.ok(ledger.log.lines.some((l) => l.includes('(mode-strict)')), 'the end is logged with its reason')

  // Back to PERMISSIVE: plaintext is served again (a fresh plaintext injector took over).
  await setMode(d, ledger, 'PERMISSIVE')
  const again = plainClient(port)
  t.after(() => again.close())
  assert.equal((await get(again, { id: 'again' })).from, 'ledger-a')
})

// Deadlines on gRPC: a deadline propagated into an HTTP or gRPC handler shortens the handler's
// outgoing gRPC calls with no code in the handler; an expired deadline sends nothing (client) and
// runs no handler (server); the route timeout becomes the gRPC deadline.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { createMesh, type Mesh } from '../../src/index.js'
import { metricValue } from '../helpers/mesh.js'
import { get, grpc, ledgerImpl, LedgerClient, ledgerService, startLedger, startMeshedLedger, type Ledger, type Running } from '../helpers/grpc-kit.js'

const quiet = { info() {}, warn() {}, error() {} }
const stops: (() => unknown)[] = []
after(async () => {
  for (const s of stops.reverse()) await s()
})

async function mesh(service: string, config: unknown[] = []): Promise<Mesh> {
  const m = await createMesh({ service, logger: quiet, config: config as object[], inbound: { shedding: false } })
  stops.push(() => m.close())
  return m
}

/** A meshed Ledger that records the deadline each Get saw (ms left) and how many calls ran. */
async function backend(): Promise<{ l: Running; left: number[]; runs: () => number; answered: () => number; m: Mesh }> {
  const m = await mesh('ledger')
  const left: number[] = []
  let runs = 0
  let answered = 0
  const l = await startMeshedLedger(m, {
    ...ledgerImpl('ledger'),
    Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
      runs++
      const dl = call.getDeadline()
      left.push(dl === Infinity ? Infinity : +dl - Date.now())
      setTimeout(() => {
        answered++
        cb(null, { id: call.request.id, from: 'ledger', amount: 1 })
      }, call.request.delay_ms)
    },
  })
  return { l, left, runs: () => runs, answered: () => answered, m }
}

function clientIn(m: Mesh): Ledger {
  const c = m.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  stops.push(() => c.close())
  return c
}

test('HTTP → gRPC: the deadline an HTTP handler received shortens its gRPC calls, with no header code in the handler', async () => {
  const b = await backend()
  const payments = await mesh('payments', [ledgerService('ledger', [{ address: b.l.address }])])
  const ledger = clientIn(payments)
  const outcome: string[] = []
  const server = http.createServer(async (req, res) => {
    await sleep(25)
    const delay = Number(new URL(req.url!, 'http://x').searchParams.get('delay'))
    try {
      const e = await get(ledger, { id: 'h', delay_ms: delay })
      res.end(e.from)
    } catch (err) {
      const e = err as grpc.ServiceError
      outcome.push(`${e.code} ${e.metadata.get('weft-error-code')[0]} answered=${b.answered()}`)
      res.end(grpc.status[e.code])
    }
  })
  const { port } = await payments.listen(server, { port: 0, host: '127.0.0.1' })
  const ok = await request(`http://127.0.0.1:${port}/pay?delay=0`, { headers: { 'weft-deadline-ms': '2000' } })
  assert.equal(await ok.body.text(), 'ledger')
  const left = b.left.at(-1)!
  assert.ok(left < 2000 - 20 && left > 0, `the ledger saw the rest of the HTTP caller's deadline (${left} ms)`)

  const answeredBefore = b.answered()
  const late = await request(`http://127.0.0.1:${port}/pay?delay=3000`, { headers: { 'weft-deadline-ms': '300' } })
  assert.equal(await late.body.text(), 'DEADLINE_EXCEEDED')
  assert.deepEqual(outcome, [`${grpc.status.DEADLINE_EXCEEDED} WEFT_ERR_DEADLINE_EXCEEDED answered=${answeredBefore}`], 'the call failed at the deadline, before the slow ledger answered')
})

test('gRPC → gRPC: a meshed gRPC handler\'s outgoing calls carry its own deadline, reduced', async () => {
  const b = await backend()
  const front = await mesh('front', [ledgerService('ledger', [{ address: b.l.address }])])
  const down = clientIn(front)
  const f = await startMeshedLedger(front, {
    ...ledgerImpl('front'),
    async Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
      await sleep(25)
      get(down, { id: call.request.id }).then((e) => cb(null, e), (err) => cb(err))
    },
  })
  const caller = await mesh('caller', [ledgerService('ledger', [{ address: f.address }])])
  const e = await get(clientIn(caller), { id: 'g' }, { deadline: Date.now() + 1500 })
  assert.equal(e.from, 'ledger')
  const left = b.left.at(-1)!
  assert.ok(left < 1500 - 20 && left > 0, `the second hop saw the first call's deadline, reduced (${left} ms)`)
})

test('an expired deadline: the mesh client sends nothing, and a meshed server runs no handler for a plain client', async () => {
  const b = await backend()
  const caller = await mesh('caller', [ledgerService('ledger', [{ address: b.l.address }])])
  const err = await get(clientIn(caller), { id: 'late' }, { deadline: Date.now() - 1 }).catch((e: grpc.ServiceError) => e)
  assert.equal((err as grpc.ServiceError).code, grpc.status.DEADLINE_EXCEEDED)
  assert.equal((err as grpc.ServiceError).metadata.get('weft-error-code')[0], 'WEFT_ERR_DEADLINE_EXCEEDED')

  // Plain grpc-js sends a call whose deadline has passed (grpc-timeout 0); the server must refuse it.
  const plain = new LedgerClient(b.l.address, grpc.credentials.createInsecure()) as unknown as Ledger
  stops.push(() => plain.close())
  await get(plain, { id: 'warm' })
  const before = b.runs()
  await get(plain, { id: 'late' }, { deadline: Date.now() - 1 }).catch(() => {})
  const refused = async (): Promise<number> => metricValue(await b.m.metrics(), 'rpc_server_duration_seconds_count', { error_code: 'WEFT_ERR_DEADLINE_EXCEEDED', rpc_grpc_status_code: '4' })
  for (let i = 0; i < 50 && (await refused()) === 0; i++) await sleep(20)
  assert.equal(await refused(), 1, 'the server refused the expired call with DEADLINE_EXCEEDED')
  assert.equal(b.runs(), before, 'and its handler never ran')
})

test('the route timeout is the gRPC deadline: WEFT_ERR_DEADLINE_EXCEEDED names the limit that fired', async () => {
  let answered = 0
  const slow = await startLedger({
    ...ledgerImpl('slow'),
    Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
      setTimeout(() => {
        answered++
        cb(null, { id: call.request.id, from: 'slow', amount: 0 })
      }, 2000)
    },
  })
  stops.push(() => slow.server.forceShutdown())
  const caller = await mesh('caller', [ledgerService('ledger', [{ address: slow.address }], { timeout: '200ms' })])
  const err = (await get(clientIn(caller), { id: 't' }).catch((e) => e)) as grpc.ServiceError
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED)
  assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_DEADLINE_EXCEEDED')
  assert.match(err.details, /timeout 200ms of service ledger/)
  assert.equal(answered, 0, 'the caller had its answer before the upstream answered')
})

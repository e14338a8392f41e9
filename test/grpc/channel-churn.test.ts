// RELIABILITY L5, gRPC side, bounded: endpoint channels made and closed many times (a static
// Service whose endpoint is replaced on every config version, each version's endpoint called once
// so its channel is made), meshes made and closed with a gRPC call each, and an endpoint's extra
// channels (endpoint-channels.ts) opened under load and closed with the mesh. After a forced GC:
// open sockets back to the baseline ±5, no growth in active timers or TCP handles (ref'd ones from
// getActiveResourcesInfo, and every timer made in the window, unref'd ones too), and heapUsed
// within +10% or +2 MB of the baseline, whichever is larger. Counts can be raised with
// WEFT_L5_GRPC_VERSIONS / WEFT_L5_GRPC_MESHES (the full L5 run is 10k cycles). No timing assertions.
// Last, the leak these found: a call refused (REFUSED_STREAM) after a version removed its endpoint
// is started again on that endpoint, on a connection made for it, which nothing used to close.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { after, test, type TestContext } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'
import { get, ledgerImpl, LedgerClient, ledgerService, startLedger, type Ledger, type Running } from '../helpers/grpc-kit.js'
import { assertBackToBaseline, heapLimit, mb, openSockets, sample, settle, socketsSettle, socketsSteady, TimerTracker, type Sample } from '../helpers/leak-probe.js'
import { grpcProxy } from '../helpers/grpc-proxy.js'

const VERSIONS = Number(process.env.WEFT_L5_GRPC_VERSIONS ?? 1000)
const MESHES = Number(process.env.WEFT_L5_GRPC_MESHES ?? 100)
const quiet = { info() {}, warn() {}, error() {} }

// Three plain ledgers for the whole file (their listening sockets are in every baseline).
const servers: Running[] = []
const names = ['s0', 's1', 's2']
after(() => {
  for (const s of servers) s.server.forceShutdown()
})
async function ledgers(): Promise<Running[]> {
  if (servers.length === 0) for (const n of names) servers.push(await startLedger(ledgerImpl(n)))
  return servers
}

function report(t: TestContext, what: string, base: Sample, end: Sample, timers: TimerTracker): void {
  t.diagnostic(`${what}: sockets ${base.sockets} -> ${end.sockets}; heapUsed ${mb(base.heapUsed)} -> ${mb(end.heapUsed)} (limit ${mb(heapLimit(base.heapUsed))}); rss ${mb(base.rss)} -> ${mb(end.rss)}`)
  t.diagnostic(`${what}: active resources ${JSON.stringify(base.resources)} -> ${JSON.stringify(end.resources)}; live timers made in the window: ${timers.live().length} ${JSON.stringify(timers.describe())}`)
}

function assertBack(base: Sample, end: Sample, timers: TimerTracker): void {
  assertBackToBaseline(base, end)
  // A few process-wide timers are legitimately made once in the window (grpc-js's subchannel pool
  // sweep, undici's clock); one per cycle would be hundreds.
  const live = timers.live().length
  assert.ok(live <= 5, `timers made during the churn still live: ${live}\n${timers.describe().join('\n')}`)
}

test(`a Service whose endpoint changes on each of ${VERSIONS} config versions, each called once: channels close, sockets/timers/heap back to baseline`, async (t) => {
  const [a, b, c] = await ledgers()
  const ring = [a!, b!, c!]
  const config: Record<string, unknown>[] = [ledgerService('ledger', [{ address: a!.address, labels: { gen: '0' } }])]
  const mesh = await createMesh({ service: 'payments', logger: quiet, config })
  const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await mesh.close()
  })
  let gen = 0
  // Each version: the endpoint gets a new label (so it is a new endpoint, with new channels) at the
  // next of three addresses; the old endpoint's channels are closed when the version removes it.
  const churn = async (versions: number): Promise<void> => {
    for (let i = 0; i < versions; i++) {
      gen++
      const to = gen % 3
      config[0] = ledgerService('ledger', [{ address: ring[to]!.address, labels: { gen: String(gen) } }])
      await mesh.reload()
      const res = await get(client, { id: `v${gen}` })
      assert.equal(res.from, names[to], 'the call went to the new endpoint')
    }
  }

  // Warm-up long enough for the JIT to settle: compiled code (and its deopt data) grows for the
  // first ~1,500 versions, then stays flat (measured to 10,700 versions: +0.7 MB after 1,700).
  await churn(1500)
  await socketsSteady()
  const base = await sample()
  const timers = new TimerTracker().install()
  try {
    await churn(VERSIONS)
    // The last version's endpoint keeps its one channel; every earlier one must be gone. (grpc-js's
    // global subchannel pool may hold one idle connection per address until its 10 s sweep.)
    await socketsSettle(base.sockets, 2_000)
    const end = await sample()
    report(t, `${VERSIONS} endpoint versions`, base, end, timers)
    assertBack(base, end, timers)
    assert.equal(timers.live(/sweep/).length, 0, 'no endpoint-channels idle sweep left (one channel per endpoint here)')
  } finally {
    timers.uninstall()
  }
})

test(`${MESHES} meshes each making a gRPC call, then closed: sockets/timers/heap back to baseline`, async (t) => {
  const [a, b] = await ledgers()
  const cycle = async (i: number): Promise<void> => {
    const mesh = await createMesh({ service: 'payments', logger: quiet, config: [ledgerService('ledger', [{ address: a!.address }, { address: b!.address }])] })
    const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
    try {
      const res = await get(client, { id: `m${i}` })
      assert.ok(res.from === 's0' || res.from === 's1')
    } finally {
      client.close()
      await mesh.close()
    }
  }

  for (let i = 0; i < 50; i++) await cycle(i)
  await socketsSteady()
  const base = await sample()
  const timers = new TimerTracker().install()
  try {
    for (let i = 0; i < MESHES; i++) await cycle(i)
    await socketsSettle(base.sockets, 5_000)
    const end = await sample()
    report(t, `${MESHES} mesh create/call/close cycles`, base, end, timers)
    assertBack(base, end, timers)
  } finally {
    timers.uninstall()
  }
})

test('streamsPerConnection: 1 with concurrent calls opens extra channels; mesh.close() leaves no channel timer or socket', async (t) => {
  const [a] = await ledgers()
  await socketsSteady()
  const base = await sample()
  const timers = new TimerTracker().install()
  let mesh: Mesh | undefined
  try {
    mesh = await createMesh({ service: 'payments', logger: quiet, config: [ledgerService('ledger', [{ address: a!.address }])] })
    mesh.grpc.setConnectionLimits({ streamsPerConnection: 1 })
    const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
    await get(client, { id: 'warm' })
    const before = openSockets()
    // Four calls at once, each holding its stream open for a moment: four connections to the
    // endpoint (client and server ends both in this process).
    const calls = Array.from({ length: 4 }, (_, i) => get(client, { id: `c${i}`, delay_ms: 200 }))
    const during = await settle(() => openSockets() >= before + 6, 5_000)
    const res = await Promise.all(calls)
    assert.deepEqual(res.map((r) => r.from), ['s0', 's0', 's0', 's0'])
    assert.ok(during, `extra connections opened (sockets ${before} before the calls, ${openSockets()} after)`)
    assert.equal(timers.live(/sweep/).length, 1, 'the idle sweep runs while extra channels are open')

    client.close()
    await mesh.close()
    await socketsSettle(base.sockets, 5_000)
    const end = await sample()
    report(t, 'extra channels then mesh.close()', base, end, timers)
    assert.deepEqual(timers.describe(/sweep/), [], 'the idle sweep stopped with the mesh')
    assertBack(base, end, timers)
  } finally {
    timers.uninstall()
    await mesh?.close()
  }
})

/**
 * A node:http2 proxy to `upstream` (as in transparent-retry.test.ts) that holds the streams
 * `hold(n)` picks until the test releases them, then refuses them (RST_STREAM REFUSED_STREAM); the
 * rest it forwards. `sessions` counts the client connections it has open.
 */
async function holdingProxy(upstream: string, hold: (n: number) => boolean) {
  let arrive: () => void = () => {}
  const arrived = new Promise<void>((r) => (arrive = r))
  let release: () => void = () => {}
  const released = new Promise<void>((r) => (release = r))
  const proxy = await grpcProxy(upstream, (n, stream) => {
    if (!hold(n)) return false
    arrive()
    void released.then(() => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM))
    return true
  })
  return Object.assign(proxy, { arrived, release })
}

test('a call refused after a config version removed its endpoint is started again transparently, and the connection it opens is closed too', async (t) => {
  const [a, b] = await ledgers()
  // The endpoint is the proxy in front of s0; its second stream is held, then refused.
  const proxy = await holdingProxy(a!.address, (n) => n === 2)
  t.after(() => proxy.close())
  const config: Record<string, unknown>[] = [ledgerService('ledger', [{ address: proxy.address }])]
  const mesh = await createMesh({ service: 'payments', logger: quiet, config })
  const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await mesh.close()
  })
  assert.equal((await get(client, { id: 'first' })).from, 's0')

  const call = get(client, { id: 'held' })
  await proxy.arrived
  // A new version moves the service to s1: the proxy endpoint is removed and its channel closed
  // (gracefully: the held call is still on it).
  config[0] = ledgerService('ledger', [{ address: b!.address }])
  await mesh.reload()
  // The held stream is refused: the attempt starts again on the same (removed) endpoint, as gRFC A6
  // allows, on a connection made for it.
  proxy.release()
  assert.equal((await call).from, 's0', 'started again transparently and answered')
  assert.equal((await get(client, { id: 'after' })).from, 's1', 'new calls go to the new endpoint')

  // That connection belongs to an endpoint no version has: nothing else will ever close it. Once
  // its call is done it must go, as the removed endpoint's first one did.
  const closed = await settle(() => proxy.sessions === 0, 5_000)
  assert.ok(closed, `the removed endpoint's connections are closed once their calls end (${proxy.sessions} still open to it)`)
  client.close()
  await mesh.close()
  const afterClose = await settle(() => proxy.sessions === 0, 5_000)
  assert.ok(afterClose, `no connection to the removed endpoint outlives mesh.close() (${proxy.sessions} still open to it)`)
})

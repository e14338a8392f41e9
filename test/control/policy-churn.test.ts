// RELIABILITY F7 at a bounded scale: policy and route churn through a real daemon resets no
// in-flight HTTP request and no long-lived gRPC stream, every new version applies to the next new
// call once the instances ACK it, and the serving listeners (and their connections) are left alone.
// A real daemon, real meshed servers on 127.0.0.1 port 0 (mTLS STRICT, the daemon's default):
// `payments` serves HTTP (mesh.listen), `ledger` serves gRPC (mesh.grpc.listen) — one service name
// has one protocol in the registry (src/control/compose.ts), so the gRPC side is its own service —
// and `checkout` calls both through its mesh. Ordering, not sleeps: every slow call is known to
// have reached its server (and its first bytes the caller) before the churn starts.
//
// Authorization is decided when a call starts (HTTP: the request's head; gRPC: the call's
// metadata, src/grpc/server.ts) and never re-evaluated mid-call, as Envoy's RBAC filter does: a
// DENY applied while a call is in flight refuses the next call and lets the one in flight finish.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { applyPolicy, eventually, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, endpointsOf, waitEndpoints, waitSynced } from '../helpers/control-kit.js'
import { grpc, LedgerClient, LedgerService, ledgerImpl, type Entry, type Ledger } from '../helpers/grpc-kit.js'

/** Updates applied one after another (each a new version, each waited for until SYNCED). */
const UPDATES = 32
/** Long-lived server-streaming calls held open across the churn. */
const STREAMS = 12
/** Slow HTTP requests held open (response head and first chunk sent) across the churn. */
const SLOW_HTTP = 6
/** Messages each stream carries after its release (one came before it). */
const STREAM_TAIL = 4
const CHECKOUT = 'spiffe://weft.local/ns/default/sa/checkout'
/** Long enough that no call of this test can hit it: the churn must not be what ends a call. */
const timeout = (i: number): string => `${120 + i}s`

function services(i: number): string {
  return `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: ${timeout(i)} }
---
apiVersion: weft/v1
kind: Service
metadata: { name: ledger }
spec: { protocol: grpc, timeout: ${timeout(i)} }
`
}

/** ALLOWs checkout on both services; on payments everything but /blocked/<tag>. */
function allowCheckout(tag: string): string {
  return `apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-allow-checkout }
spec:
  service: payments
  action: ALLOW
  rules:
    - from: [{ principals: ["${CHECKOUT}"] }]
      to: [{ notPaths: ["/blocked/${tag}"] }]
---
apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: ledger-allow-checkout }
spec:
  service: ledger
  action: ALLOW
  rules:
    - from: [{ principals: ["${CHECKOUT}"] }]
      to: [{ notPaths: ["/weft.test.Ledger/Blocked${tag}"] }]
`
}

/** A Route on payments: /probe/<tag> is aborted with 418 by the caller's mesh, the rest goes through. */
function paymentsRoute(tag: string): string {
  return `apiVersion: weft/v1
kind: Route
metadata: { name: payments-route }
spec:
  service: payments
  rules:
    - name: probe-${tag}
      matches: [{ path: { exact: "/probe/${tag}" } }]
      fault: { abort: { httpStatus: 418 } }
    - backends: [{ weight: 1 }]
`
}

/** A Route on ledger: calls with metadata x-probe: <tag> are aborted with 418, the rest go through. */
function ledgerRoute(tag: string): string {
  return `apiVersion: weft/v1
kind: Route
metadata: { name: ledger-route }
spec:
  service: ledger
  rules:
    - name: probe-${tag}
      matches: [{ headers: { x-probe: { exact: "${tag}" } } }]
      fault: { abort: { httpStatus: 418 } }
    - backends: [{ weight: 1 }]
`
}

const DENY_CHECKOUT = `apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-deny-checkout }
spec:
  service: payments
  action: DENY
  rules: [{ from: [{ principals: ["${CHECKOUT}"] }] }]
---
apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: ledger-deny-checkout }
spec:
  service: ledger
  action: DENY
  rules: [{ from: [{ principals: ["${CHECKOUT}"] }] }]
`

interface Deferred {
  promise: Promise<void>
  resolve(): void
}
function deferred(): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

/** The body of /slow/<id>: a head chunk before the release, a tail after it. */
const HEAD = (id: string): string => `head:${id}:` + 'h'.repeat(8 * 1024)
const TAIL = (id: string): string => `tail:${id}:` + 't'.repeat(32 * 1024)

/** The session sockets grpc-js's channelz lists for a server (HTTP/2 connections it serves). */
function serverSockets(server: grpc.Server): Promise<string[]> {
  const id = server.getChannelzRef().id
  return new Promise((resolve, reject) => {
    grpc.getChannelzHandlers().GetServerSockets({ request: { server_id: String(id), start_socket_id: '0', max_results: '0' } } as never, ((err: Error | null, res: { socket_ref: { socket_id: string; name: string }[] }) => {
      if (err) return reject(err)
      resolve(res.socket_ref.map((s) => `${s.socket_id}:${s.name}`).sort())
    }) as never)
  })
}

/** One server-streaming List as the caller sees it. */
interface OpenStream {
  id: string
  first: Promise<void>
  done: Promise<{ entries: Entry[]; code: number | undefined; error?: grpc.ServiceError }>
}

function openList(client: Ledger, id: string): OpenStream {
  const stream = client.List({ id })
  const first = deferred()
  const entries: Entry[] = []
  let code: number | undefined
  const done = new Promise<{ entries: Entry[]; code: number | undefined; error?: grpc.ServiceError }>((resolve) => {
    let finished = false
    const finish = (error?: grpc.ServiceError) => {
      if (finished) return
      finished = true
      resolve({ entries, code, error })
    }
    stream.on('data', (e: Entry) => {
      entries.push(e)
      first.resolve()
    })
    stream.on('status', (s: grpc.StatusObject) => {
      code = s.code
      // 'status' comes after 'end' for an OK call; after 'error' for a failed one.
      if (s.code === grpc.status.OK) finish()
    })
    stream.on('error', (err: grpc.ServiceError) => {
      code = err.code
      first.resolve()
      finish(err)
    })
  })
  return { id, first: first.promise, done }
}

/** One slow HTTP request as the caller sees it: headers received, then the whole body. */
interface OpenRequest {
  id: string
  headers: Promise<void>
  done: Promise<{ status: number; body: string } | { error: Error }>
}

function openSlow(mesh: import('../../src/index.js').Mesh, id: string): OpenRequest {
  const headers = deferred()
  const done = (async () => {
    try {
      const res = await mesh.request(`http://payments/slow/${id}`)
      headers.resolve()
      return { status: res.statusCode, body: await res.body.text() }
    } catch (err) {
      headers.resolve()
      return { error: err as Error }
    }
  })()
  return { id, headers: headers.promise, done }
}

/**
 * Every instance SYNCED at `version` or later. waitSynced alone is not enough right after an
 * apply: the daemon answers the apply before its push hub's coalesce window closes, so /v1/status
 * may still show the previous version, all SYNCED.
 */
async function syncedAt(d: TestDaemon, ids: string[], version: number): Promise<number> {
  return eventually(async () => {
    const v = await waitSynced(d, ids, 15_000)
    return v >= version ? v : undefined
  }, 15_000, `instances SYNCED at version ${version}`)
}

function unary(client: Ledger, id: string, md = new grpc.Metadata()): Promise<{ entry?: Entry; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    client.Get({ id }, md, { deadline: Date.now() + 10_000 }, (err, res) => resolve(err ? { error: err } : { entry: res }))
  })
}

async function getText(mesh: import('../../src/index.js').Mesh, path: string): Promise<{ status: number; body: string }> {
  const res = await mesh.request(`http://payments${path}`)
  return { status: res.statusCode, body: await res.body.text() }
}

test('F7: policy and route churn through the daemon resets no in-flight HTTP request and no gRPC stream; each version applies to new calls once ACKed; listeners and connections are kept; a DENY refuses new calls only', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const first = await applyPolicy(d, [services(0), allowCheckout('a0'), paymentsRoute('r0'), ledgerRoute('g0')].join('---\n'))
  assert.equal(first.status, 200, JSON.stringify(first.body))

  // payments: HTTP. /slow/<id> sends its head and a first chunk, then waits for its release.
  let release = deferred()
  const seenHttp = new Set<string>()
  let httpConnections = 0
  const server = http.createServer((req, res) => {
    const slow = /^\/slow\/(.+)$/.exec(req.url ?? '')
    if (!slow) return void res.end(`ok ${req.url}`)
    const id = slow[1]!
    const gate = release.promise
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write(HEAD(id))
    seenHttp.add(id)
    void gate.then(() => res.end(TAIL(id)))
  })
  // No load shedding: a loaded test machine (event loop lag) must not be what refuses a call here.
  const payments = await controlMesh(d, 'payments', { inbound: { shedding: false } })
  const addr = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  // Raw TCP accepts (the mesh's front door listens on 'connection' first; this only counts).
  let httpClosed = 0
  server.on('connection', (socket) => {
    httpConnections++
    socket.on('close', () => httpClosed++)
  })

  // ledger: gRPC. List sends one message, waits for its release, then the rest, then ends.
  const seenStreams = new Set<string>()
  const peers: string[] = []
  const ledger = await controlMesh(d, 'ledger', { inbound: { shedding: false } })
  const grpcServer = ledger.grpc.server()
  grpcServer.addService(LedgerService, {
    ...ledgerImpl('ledger', { onCall: (_m, call) => void peers.push(call.getPeer()) }),
    List(call: grpc.ServerWritableStream<{ id: string }, Entry>) {
      peers.push(call.getPeer())
      const id = call.request.id
      const gate = release.promise
      call.write({ id: `${id}-0`, from: 'ledger', amount: 0 })
      seenStreams.add(id)
      void gate.then(() => {
        for (let i = 1; i <= STREAM_TAIL; i++) call.write({ id: `${id}-${i}`, from: 'ledger', amount: i })
        call.end()
      })
    },
  })
  const { port: grpcPort } = await ledger.grpc.listen(grpcServer, { port: 0, host: '127.0.0.1' })

  const checkout = await controlMesh(d, 'checkout')
  const client = checkout.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    // Whatever the outcome, nothing stays held: release, then close callers before servers.
    release.resolve()
    client.close()
    await checkout.close()
    await ledger.close()
    await payments.close()
  })
  const ids = [checkout.instanceId!, payments.instanceId!, ledger.instanceId!]
  await waitSynced(d, ids, 15_000)
  await waitEndpoints(checkout, 'payments', 1, 15_000)
  await waitEndpoints(checkout, 'ledger', 1, 15_000)
  const paymentsEndpoints = endpointsOf(checkout, 'payments')
  const ledgerEndpoints = endpointsOf(checkout, 'ledger')
  assert.deepEqual(paymentsEndpoints, [`127.0.0.1:${addr.port}`])
  assert.deepEqual(ledgerEndpoints, [`127.0.0.1:${grpcPort}`])

  // Warm both paths (and check the policy in place: the ALLOW lets checkout through).
  assert.deepEqual(await getText(checkout, '/ok'), { status: 200, body: 'ok /ok' })
  assert.equal((await unary(client, 'warm')).entry?.from, 'ledger')

  // The long-lived calls: each known to have reached its server and its first bytes the caller.
  const slow = Array.from({ length: SLOW_HTTP }, (_, i) => openSlow(checkout, `s${i}`))
  const streams = Array.from({ length: STREAMS }, (_, i) => openList(client, `l${i}`))
  await Promise.all([...slow.map((s) => s.headers), ...streams.map((s) => s.first)])
  await eventually(async () => seenHttp.size === SLOW_HTTP && seenStreams.size === STREAMS, 15_000, 'every slow call seen by its server')
  // Short calls each way on top of them, so the connections the probes reuse already exist. Two
  // HTTP requests back to back, as the probes make: the second one is sent before the caller's
  // pool has the first one's connection back, so the pool settles at two idle connections.
  for (let i = 0; i < 3; i++) {
    assert.equal((await getText(checkout, '/ok')).status, 200)
    assert.equal((await getText(checkout, '/ok')).status, 200)
  }
  assert.equal((await unary(client, 'pre')).entry?.from, 'ledger')
  const httpConnectionsBefore = httpConnections
  const httpClosedBefore = httpClosed
  const grpcSocketsBefore = await serverSockets(grpcServer)
  const peersBefore = new Set(peers)
  assert.ok(httpConnectionsBefore >= SLOW_HTTP, `the slow requests hold ${SLOW_HTTP} connections (${httpConnectionsBefore} accepted)`)
  assert.ok(grpcSocketsBefore.length >= 1, 'the streams ride an HTTP/2 connection channelz lists')
  const versionBefore = checkout.configVersion

  // The churn: every update is a new version; after its ACK the next new call sees it.
  let version = 0
  for (let i = 1; i <= UPDATES; i++) {
    let yaml: string
    switch (i % 4) {
      case 0: yaml = paymentsRoute(`r${i}`); break
      case 1: yaml = services(i); break
      case 2: yaml = allowCheckout(`a${i}`); break
      default: yaml = ledgerRoute(`g${i}`)
    }
    const applied = await applyPolicy(d, yaml)
    assert.equal(applied.status, 200, `update ${i}: ${JSON.stringify(applied.body)}`)
    assert.ok(applied.body.version > version, `update ${i} is a new version (${applied.body.version} after ${version})`)
    version = applied.body.version
    await syncedAt(d, ids, version)

    // New calls right after the ACK: the new version applies to them.
    switch (i % 4) {
      case 0: {
        const probe = await getText(checkout, `/probe/r${i}`)
        assert.equal(probe.status, 418, `update ${i}: the new Route aborts /probe/r${i}`)
        assert.equal((await getText(checkout, `/probe/r${i - 4}`)).status, 200, `update ${i}: the old Route's probe path is plain traffic now`)
        break
      }
      case 1:
        assert.equal(checkout.snapshot!.lookup('payments')!.settings.timeoutMs, (120 + i) * 1000, `update ${i}: the new payments timeout is in use`)
        assert.equal(checkout.snapshot!.lookup('ledger')!.settings.timeoutMs, (120 + i) * 1000, `update ${i}: the new ledger timeout is in use`)
        assert.equal((await getText(checkout, '/ok')).status, 200)
        break
      case 2: {
        assert.equal((await getText(checkout, `/blocked/a${i - 4}`)).status, 200, `update ${i}: the old exception is gone`)
        const blocked = await getText(checkout, `/blocked/a${i}`)
        assert.equal(blocked.status, 403, `update ${i}: the new ALLOW leaves /blocked/a${i} out (${blocked.body})`)
        assert.match(blocked.body, /payments-allow-checkout/)
        break
      }
      default: {
        const md = new grpc.Metadata()
        md.set('x-probe', `g${i}`)
        const aborted = await unary(client, `probe${i}`, md)
        assert.ok(aborted.error, `update ${i}: the new ledger Route aborts a call with x-probe g${i}`)
        assert.match(aborted.error.details, /418/)
        const old = new grpc.Metadata()
        old.set('x-probe', `g${i - 4}`)
        assert.equal((await unary(client, `old${i}`, old)).entry?.from, 'ledger', `update ${i}: the old Route's probe is plain traffic now`)
      }
    }
  }
  assert.ok(checkout.configVersion >= versionBefore + UPDATES, `checkout went through every version (${versionBefore} → ${checkout.configVersion})`)

  // Nothing was rebuilt or reconnected: same listeners, same addresses, no new connection.
  assert.ok(server.listening, 'the node:http server still listens')
  assert.equal((server.address() as AddressInfo).port, addr.port)
  assert.deepEqual(endpointsOf(checkout, 'payments'), paymentsEndpoints, 'payments registered at the same address')
  assert.deepEqual(endpointsOf(checkout, 'ledger'), ledgerEndpoints, 'ledger registered at the same address')
  assert.equal(httpClosed, httpClosedBefore, 'no HTTP connection was closed during the churn')
  assert.equal(httpConnections, httpConnectionsBefore, 'no HTTP connection was opened during the churn (none was reset and reopened)')
  assert.deepEqual(await serverSockets(grpcServer), grpcSocketsBefore, 'the gRPC server serves the same HTTP/2 connections')
  assert.ok([...new Set(peers)].every((p) => peersBefore.has(p)), `every gRPC call during the churn came over a connection from before it (${[...new Set(peers)].join(', ')})`)
  assert.deepEqual(seenHttp.size, SLOW_HTTP)
  assert.deepEqual(seenStreams.size, STREAMS)

  // Release: every in-flight call completes whole.
  release.resolve()
  for (const s of slow) {
    const r = await s.done
    assert.ok(!('error' in r), `slow request ${s.id} failed: ${'error' in r ? r.error.message : ''}`)
    assert.equal(r.status, 200, `slow request ${s.id}`)
    assert.equal(r.body, HEAD(s.id) + TAIL(s.id), `slow request ${s.id}: the whole body`)
  }
  for (const s of streams) {
    const r = await s.done
    assert.equal(r.error, undefined, `stream ${s.id} failed: ${r.error?.message}`)
    assert.equal(r.code, grpc.status.OK, `stream ${s.id} ended OK`)
    assert.deepEqual(r.entries.map((e) => e.id), Array.from({ length: STREAM_TAIL + 1 }, (_, i) => `${s.id}-${i}`), `stream ${s.id}: every message`)
  }
  assert.equal(httpConnections, httpConnectionsBefore, 'no HTTP connection opened to finish them')
  assert.equal(httpClosed, httpClosedBefore, 'none closed to finish them')

  // A DENY while calls are in flight: the next new call is refused; the calls already admitted
  // (authorized at their start) finish.
  release = deferred()
  seenHttp.clear()
  seenStreams.clear()
  const lateSlow = [openSlow(checkout, 'd0'), openSlow(checkout, 'd1')]
  const lateStreams = [openList(client, 'm0'), openList(client, 'm1'), openList(client, 'm2')]
  await Promise.all([...lateSlow.map((s) => s.headers), ...lateStreams.map((s) => s.first)])
  await eventually(async () => seenHttp.size === 2 && seenStreams.size === 3, 15_000, 'the late calls seen by their servers')
  const denied = await applyPolicy(d, DENY_CHECKOUT)
  assert.equal(denied.status, 200, JSON.stringify(denied.body))
  await syncedAt(d, ids, denied.body.version)
  const refused = await getText(checkout, '/ok')
  assert.equal(refused.status, 403, `a new HTTP request after the DENY is refused (${refused.body})`)
  assert.match(refused.body, /payments-deny-checkout/)
  const refusedCall = await unary(client, 'after-deny')
  assert.equal(refusedCall.error?.code, grpc.status.PERMISSION_DENIED, `a new gRPC call after the DENY is refused (${refusedCall.error?.message})`)
  assert.match(refusedCall.error!.details, /ledger-deny-checkout/)
  const refusedStream = await openList(client, 'after-deny').done
  assert.equal(refusedStream.code, grpc.status.PERMISSION_DENIED, 'a new stream after the DENY is refused')
  assert.ok(!seenStreams.has('after-deny'), 'its handler never ran')

  release.resolve()
  for (const s of lateSlow) {
    const r = await s.done
    assert.ok(!('error' in r), `late request ${s.id} failed: ${'error' in r ? r.error.message : ''}`)
    assert.equal(r.status, 200, `late request ${s.id}, admitted before the DENY, completes`)
    assert.equal(r.body, HEAD(s.id) + TAIL(s.id))
  }
  for (const s of lateStreams) {
    const r = await s.done
    assert.equal(r.code, grpc.status.OK, `late stream ${s.id}, admitted before the DENY, ends OK (${r.error?.message ?? ''})`)
    assert.equal(r.entries.length, STREAM_TAIL + 1, `late stream ${s.id}: every message`)
  }
})

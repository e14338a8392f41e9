// A mode change to STRICT reaches open plaintext HTTP connections (identity issue, "mTLS modes";
// RELIABILITY S5): the front door sorts a connection when it arrives, and a keep-alive plaintext
// connection accepted under PERMISSIVE or DISABLE is ended once the daemon pushes STRICT — an idle
// one at once, one with a response in flight after that response (sent with `connection: close`) —
// each counted as weft_mtls_connections_refused_total{reason="mode-strict"}. The client's next
// request then gets what any new plaintext connection to a STRICT server gets: one 401
// WEFT_ERR_UNAUTHENTICATED. DISABLE ↔ PERMISSIVE ends nothing. Real servers on 127.0.0.1, a real
// daemon, undici clients that count their connections.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Client } from 'undici'
import { applyPolicy, eventually, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, type LoggedMesh } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE'

const fixture = (f: string) => readFileSync(fileURLToPath(new URL(`../fixtures/${f}`, import.meta.url)), 'utf8')
/** An https server's own certificate (served in DISABLE only). */
const OWN = { key: fixture('localhost-key.pem'), cert: fixture('localhost-cert.pem') }

async function setMode(d: TestDaemon, mesh: LoggedMesh, mode: Mode): Promise<void> {
  const applied = await applyPolicy(d, `apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: payments-mtls }\nspec: { service: payments, mtls: ${mode} }\n`)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  await eventually(async () => mesh.identity.serverMode() === mode, 10_000, `payments' mode ${mode}`)
}

async function refusals(mesh: LoggedMesh, reason: string): Promise<number> {
  return metricValue(await mesh.metrics(), 'weft_mtls_connections_refused_total', { reason })
}

/**
 * A keep-alive client on one connection at a time (plaintext; `tls`: TLS with no client
 * certificate, for an https server's own certificate); counts its connections.
 */
function keepAliveClient(port: number, tls = false) {
  const c = new Client(`${tls ? 'https' : 'http'}://127.0.0.1:${port}`, { keepAliveTimeout: 60_000, pipelining: 1, connect: { rejectUnauthorized: false } })
  const counts = { connects: 0, disconnects: 0 }
  c.on('connect', () => counts.connects++)
  c.on('disconnect', () => counts.disconnects++)
  return {
    counts,
    async get(path = '/'): Promise<{ status: number; connection: string | undefined; code: string | undefined; body: string }> {
      const r = await c.request({ path, method: 'GET' })
      return { status: r.statusCode, connection: r.headers.connection as string | undefined, code: r.headers['weft-error-code'] as string | undefined, body: await r.body.text() }
    },
    close: () => c.destroy().catch(() => {}),
  }
}

/** payments serving `/` at once and `/hold` once release() is called (entered() resolves first). */
async function paymentsServer(d: TestDaemon, own?: typeof OWN): Promise<{ payments: LoggedMesh; port: number; entered: Promise<void>; release(): void; served: number[] }> {
  const payments = await controlMesh(d, 'payments')
  let release!: () => void
  const released = new Promise<void>((r) => (release = r))
  let entered!: () => void
  const enteredP = new Promise<void>((r) => (entered = r))
  const served: number[] = []
  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    served.push(req.socket.remotePort ?? 0)
    if (req.url === '/hold') {
      entered()
      await released
    }
    res.end('ok')
  }
  const server = own ? https.createServer(own, handler) : http.createServer(handler)
  server.keepAliveTimeout = 60_000
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  return { payments, port, entered: enteredP, release, served }
}

function assertRefused(r: { status: number; code: string | undefined; body: string }): void {
  assert.equal(r.status, 401)
  assert.equal(r.code, 'WEFT_ERR_UNAUTHENTICATED')
  const body = JSON.parse(r.body) as { error: { code: string; message: string } }
  assert.equal(body.error.code, 'WEFT_ERR_UNAUTHENTICATED')
  assert.match(body.error.message, /requires mTLS \(mode STRICT\)/)
}

test('PERMISSIVE → STRICT: an idle plaintext keep-alive connection is closed at once and one with a request in flight finishes it (connection: close); both ends are counted; each client\'s next request is refused with WEFT_ERR_UNAUTHENTICATED', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  await setModeBeforeStart(d, 'PERMISSIVE')
  const { payments, port, entered, release, served } = await paymentsServer(d)
  const idle = keepAliveClient(port)
  const busy = keepAliveClient(port)
  // The held response first: the mesh's close would wait for it.
  t.after(async () => {
    release()
    await Promise.all([idle.close(), busy.close()])
    await payments.close()
  })
  assert.equal(payments.identity.serverMode(), 'PERMISSIVE')

  assert.deepEqual(await idle.get(), { status: 200, connection: 'keep-alive', code: undefined, body: 'ok' })
  assert.deepEqual(await busy.get(), { status: 200, connection: 'keep-alive', code: undefined, body: 'ok' })
  const inFlight = busy.get('/hold')
  await entered
  assert.equal(await refusals(payments, 'mode-strict'), 0)

  await setMode(d, payments, 'STRICT')
  await eventually(async () => (await refusals(payments, 'mode-strict')) === 2 || undefined, 10_000, 'both plaintext connections ended')
  // The idle connection closes at once, while the other one's response is still held.
  await eventually(async () => idle.counts.disconnects === 1 || undefined, 10_000, 'the idle connection closed')
  assert.equal(busy.counts.disconnects, 0, 'the connection with a request in flight stays open for it')

  release()
  assert.deepEqual(await inFlight, { status: 200, connection: 'close', code: undefined, body: 'ok' }, 'the request in flight completes, told the connection closes')
  await eventually(async () => busy.counts.disconnects === 1 || undefined, 10_000, 'the busy connection closed after its response')
  for (const c of [idle, busy]) assert.equal(c.counts.connects, 1, 'one connection served every request before the change')
  assert.equal(served.length, 3)
  assert.equal(new Set(served.slice(1)).size, 1, 'the held request came on the busy client\'s first connection')

  // The next request of each client: a new plaintext connection to a STRICT server, refused.
  assertRefused(await idle.get())
  assertRefused(await busy.get())
  assert.equal(served.length, 3, 'the handler never ran for a refused request')
  assert.equal(await refusals(payments, 'plaintext'), 2)
  assert.equal(await refusals(payments, 'mode-strict'), 2, 'each ended connection counted once')
  assert.ok(payments.log.lines.some((l) => l.includes('(mode-strict)')), 'the end is logged with its reason')
})

test('DISABLE → PERMISSIVE → DISABLE ends nothing (the same connection serves on); DISABLE → STRICT ends it', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  await setModeBeforeStart(d, 'DISABLE')
  const { payments, port } = await paymentsServer(d)
  const c = keepAliveClient(port)
  t.after(async () => {
    await c.close()
    await payments.close()
  })
  assert.equal(payments.identity.serverMode(), 'DISABLE')
  assert.equal((await c.get()).status, 200)

  await setMode(d, payments, 'PERMISSIVE')
  // A new connection makes the front door read the mode at once (no wait for its next check).
  const other = keepAliveClient(port)
  t.after(() => other.close())
  assert.equal((await other.get()).status, 200)
  assert.equal((await c.get()).status, 200)
  await setMode(d, payments, 'DISABLE')
  assert.equal((await other.get()).status, 200)
  assert.equal((await c.get()).status, 200)
  assert.deepEqual(c.counts, { connects: 1, disconnects: 0 }, 'the connection accepted under DISABLE was never ended')
  assert.equal(await refusals(payments, 'mode-strict'), 0)

  await setMode(d, payments, 'STRICT')
  await eventually(async () => c.counts.disconnects === 1 || undefined, 10_000, 'the DISABLE connection ended under STRICT')
  assertRefused(await c.get())
  assert.equal(await refusals(payments, 'mode-strict'), 2, 'both open plaintext connections ended')
})

test('an https server\'s own TLS (DISABLE) counts as plaintext: under STRICT its connection ends after the response in flight (connection: close), and the client, with no SVID, is refused at the handshake', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  await setModeBeforeStart(d, 'DISABLE')
  const { payments, port, entered, release } = await paymentsServer(d, OWN)
  const c = keepAliveClient(port, true)
  t.after(async () => {
    release()
    await c.close()
    await payments.close()
  })
  assert.equal(payments.identity.serverMode(), 'DISABLE')
  assert.equal((await c.get()).status, 200)
  const inFlight = c.get('/hold')
  await entered

  await setMode(d, payments, 'STRICT')
  await eventually(async () => (await refusals(payments, 'mode-strict')) === 1 || undefined, 10_000, 'the connection ended')
  release()
  assert.deepEqual(await inFlight, { status: 200, connection: 'close', code: undefined, body: 'ok' }, 'the TLS socket node:http serves was found: the request in flight completes')
  await eventually(async () => c.counts.disconnects === 1 || undefined, 10_000, 'the connection closed after its response')
  assert.equal(c.counts.connects, 1)
  await assert.rejects(c.get(), 'a new connection without a client certificate fails the mesh handshake')
})

/** The mode in the daemon's policy before payments starts (its first view has it). */
async function setModeBeforeStart(d: TestDaemon, mode: Mode): Promise<void> {
  const applied = await applyPolicy(d, `apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: payments-mtls }\nspec: { service: payments, mtls: ${mode} }\n`)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
}

// A meshed gRPC server's port under a daemon follows the mTLS mode per connection (identity issue,
// "mTLS modes"): mesh.grpc.listen runs the mesh's own listener, which sorts each connection by its
// first byte and hands it to grpc-js through connection injectors. STRICT serves mTLS and refuses
// plaintext (counted; answered UNAUTHENTICATED); PERMISSIVE serves both on the same port; a mode
// pushed by the daemon later applies to the next connection without listening again, and STRICT
// also ends open plaintext sessions (strict-ends-plaintext-grpc.test.ts); the caller's certificate
// and the local port still reach the interceptor (AuthorizationPolicy principals and to.ports);
// mesh.close() drains and closes every kind of connection and frees the port.
import assert from 'node:assert/strict'
import { connect, createServer, Server as NetServer, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { test } from 'node:test'
import { applyPolicy, eventually, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints, type LoggedMesh } from '../helpers/control-kit.js'
import { get, grpc, LedgerClient, ledgerImpl, LedgerService, type Ledger } from '../helpers/grpc-kit.js'
import { metricValue } from '../helpers/mesh.js'
import { freePort } from '../helpers/free-port.js'

/**
 * What an interceptor after the mesh's saw of one admitted call, read where the mesh's interceptor
 * reads it: the caller's certificate (getAuthContext) and the local port (getConnectionInfo).
 */
interface Seen {
  id: string
  cert: boolean
  localPort: number | undefined
}

async function ledgerServer(d: TestDaemon, port = 0): Promise<{ ledger: LoggedMesh; port: number; seen: Seen[] }> {
  const ledger = await controlMesh(d, 'ledger')
  const seen: Seen[] = []
  const probe: grpc.ServerInterceptor = (_method, call) => new grpc.ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMessage(msg: { id: string }, nextMsg) {
          seen.push({ id: msg.id, cert: call.getAuthContext().sslPeerCertificate !== undefined, localPort: call.getConnectionInfo().localPort })
          nextMsg(msg)
        },
      })
    },
  })
  const server = ledger.grpc.server({ interceptors: [probe] })
  server.addService(LedgerService, ledgerImpl('ledger-a'))
  const bound = await ledger.grpc.listen(server, { port, host: '127.0.0.1' })
  return { ledger, port: bound.port, seen }
}

/** A grpc-js client on its own connection (no subchannel shared with earlier clients). */
function plainClient(port: number): Ledger {
  return new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as Ledger
}

function callerMd(chain: string): grpc.Metadata {
  const md = new grpc.Metadata()
  md.set('weft-caller', chain)
  return md
}

async function refusedPlaintext(mesh: LoggedMesh): Promise<number> {
  return metricValue(await mesh.metrics(), 'weft_mtls_connections_refused_total', { reason: 'plaintext' })
}

/** What a plaintext call to a STRICT server gets (refuse-plaintext.ts). */
async function unauthenticated(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.message)
    assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_UNAUTHENTICATED')
    return true
  })
}

async function unavailable(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAVAILABLE, err.message)
    return true
  })
}

async function setMode(d: TestDaemon, mesh: LoggedMesh, mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE'): Promise<void> {
  const applied = await applyPolicy(d, `apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: ledger-mtls }\nspec: { service: ledger, mtls: ${mode} }\n`)
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  await eventually(async () => mesh.identity.serverMode() === mode, 10_000, `ledger's mode ${mode}`)
}


test('STRICT (the default): a meshed gRPC caller is served over mTLS and named by its certificate; a plaintext grpc-js client gets UNAUTHENTICATED and the refusal is counted', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const { ledger, port, seen } = await ledgerServer(d)
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
  assert.deepEqual(seen, [{ id: 'meshed', cert: true, localPort: port }], 'over mTLS: the handler sees the client certificate and the port the call came in on')
  const m = await ledger.metrics()
  assert.equal(metricValue(m, 'rpc_server_duration_seconds_count', { source_service: 'payments', rpc_grpc_status_code: '0' }), 1, 'the caller named by its certificate')

  await unauthenticated(get(plain, { id: 'plain' }, { deadline: Date.now() + 5000 }, callerMd('payments')))
  assert.ok(await refusedPlaintext(ledger) >= 1, 'the plaintext connection counted as refused')
  assert.equal(seen.length, 1, 'the handler never ran for the plaintext call')
})

test('a mode change reaches a bound gRPC server: PERMISSIVE serves plaintext callers on the same port (no identity) and meshed callers over mTLS; STRICT again refuses plaintext, the open connection included; DISABLE serves plaintext and no TLS', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const { ledger, port, seen } = await ledgerServer(d)
  const payments = await controlMesh(d, 'payments')
  const meshed = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const clients: Ledger[] = [meshed]
  t.after(async () => {
    for (const c of clients) c.close()
    await payments.close()
    await ledger.close()
  })
  await waitEndpoints(payments, 'ledger', 1)
  assert.equal((await get(meshed, { id: 'strict-meshed' })).from, 'ledger-a')

  // PERMISSIVE, pushed by the daemon to a server listening since STRICT.
  await setMode(d, ledger, 'PERMISSIVE')
  const plain = plainClient(port)
  clients.push(plain)
  assert.equal((await get(plain, { id: 'permissive-plain' }, {}, callerMd('web,reports'))).from, 'ledger-a')
  assert.equal((await get(plain, { id: 'permissive-anonymous' })).from, 'ledger-a')
  assert.equal((await get(meshed, { id: 'permissive-meshed' })).from, 'ledger-a')
  // A new meshed connection made in PERMISSIVE is mTLS too.
  const payments2 = await controlMesh(d, 'payments')
  const meshed2 = payments2.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(() => payments2.close())
  clients.push(meshed2)
  await waitEndpoints(payments2, 'ledger', 1)
  assert.equal((await get(meshed2, { id: 'permissive-meshed-new' })).from, 'ledger-a')
  assert.deepEqual(seen.map((s) => [s.id, s.cert, s.localPort]), [
    ['strict-meshed', true, port],
    ['permissive-plain', false, port],
    ['permissive-anonymous', false, port],
    ['permissive-meshed', true, port],
    ['permissive-meshed-new', true, port],
  ])
  let m = await ledger.metrics()
  assert.equal(metricValue(m, 'rpc_server_duration_seconds_count', { source_service: 'reports', rpc_grpc_status_code: '0' }), 1, 'no certificate: the caller chain names the caller')
  assert.equal(metricValue(m, 'rpc_server_duration_seconds_count', { source_service: 'unknown', rpc_grpc_status_code: '0' }), 1, 'no certificate and no caller chain: unknown')
  assert.equal(metricValue(m, 'rpc_server_duration_seconds_count', { source_service: 'payments', rpc_grpc_status_code: '0' }), 3, 'the meshed calls named by certificate')
  assert.equal(await refusedPlaintext(ledger), 0)

  // STRICT again: a new plaintext connection is refused, and the one accepted under PERMISSIVE is
  // ended (drained) so its client's next call is refused too; the meshed callers are unaffected.
  await setMode(d, ledger, 'STRICT')
  const late = plainClient(port)
  clients.push(late)
  await unauthenticated(get(late, { id: 'strict-plain' }, { deadline: Date.now() + 5000 }))
  assert.ok(await refusedPlaintext(ledger) >= 1, 'the new plaintext connection counted as refused')
  await eventually(async () => metricValue(await ledger.metrics(), 'weft_mtls_connections_refused_total', { reason: 'mode-strict' }) === 1 || undefined, 10_000, 'the open plaintext connection ended')
  await unauthenticated(get(plain, { id: 'strict-open-plain' }, { deadline: Date.now() + 5000 }))
  assert.equal((await get(meshed, { id: 'strict-meshed-again' })).from, 'ledger-a')
  assert.ok(!seen.some((s) => s.id === 'strict-plain' || s.id === 'strict-open-plain'), 'the refused calls never reached the handler')

  // DISABLE: plaintext is served, nothing is inspected; a TLS client fails at HTTP/2's preface.
  await setMode(d, ledger, 'DISABLE')
  const disabled = plainClient(port)
  clients.push(disabled)
  assert.equal((await get(disabled, { id: 'disable-plain' })).from, 'ledger-a')
  const tlsOutcome = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false })
    s.once('secureConnect', () => resolve('handshake completed'))
    s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`))
    s.once('close', () => resolve('closed'))
  })
  assert.notEqual(tlsOutcome, 'handshake completed', 'no TLS in DISABLE')
  m = await ledger.metrics()
  assert.equal(metricValue(m, 'rpc_server_duration_seconds_count', { rpc_grpc_status_code: '0' }), seen.length, 'every served call counted')
})

test('AuthorizationPolicy on injected connections: from.principals and to.ports both match (the certificate and the port reach the interceptor)', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const wanted = await freePort()
  const applied = await applyPolicy(d, [
    'apiVersion: weft/v1',
    'kind: AuthorizationPolicy',
    'metadata: { name: ledger-payments-on-port }',
    'spec:',
    '  service: ledger',
    '  action: ALLOW',
    '  rules:',
    '    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/payments"] }]',
    `      to: [{ ports: [${wanted}] }]`,
    '---',
    'apiVersion: weft/v1',
    'kind: PeerAuthentication',
    'metadata: { name: ledger-permissive }',
    'spec: { service: ledger, mtls: PERMISSIVE }',
    '',
  ].join('\n'))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const { ledger, port, seen } = await ledgerServer(d, wanted)
  assert.equal(port, wanted)
  const payments = await controlMesh(d, 'payments')
  const intruder = await controlMesh(d, 'intruder')
  const ok = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const bad = intruder.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const plain = plainClient(port)
  t.after(async () => {
    for (const c of [ok, bad, plain]) c.close()
    await payments.close()
    await intruder.close()
    await ledger.close()
  })
  await waitEndpoints(payments, 'ledger', 1)
  await waitEndpoints(intruder, 'ledger', 1)

  // Both halves of the rule must match: a port seen as 0 or a missing certificate would deny this.
  assert.equal((await get(ok, { id: 'payments' })).from, 'ledger-a')
  const denied = async (client: Ledger, id: string, md?: grpc.Metadata): Promise<void> => {
    await assert.rejects(get(client, { id }, {}, md), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.PERMISSION_DENIED, err.message)
      assert.match(err.details, /ledger-payments-on-port/)
      return true
    })
  }
  await denied(bad, 'intruder')
  // A plaintext caller has no principal, whatever caller chain it claims.
  await denied(plain, 'plain', callerMd('payments'))
  assert.deepEqual(seen.map((s) => s.id), ['payments'], 'only the allowed call reached the handler')
  assert.equal(metricValue(await ledger.metrics(), 'weft_authz_denied_total', { policy: 'ledger-payments-on-port' }), 2)
})

test('mesh.close() with open gRPC connections of both kinds (and one that sent nothing) resolves, closes them all and frees the port', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: ledger-permissive }\nspec: { service: ledger, mtls: PERMISSIVE }\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const { ledger, port } = await ledgerServer(d)
  const payments = await controlMesh(d, 'payments')
  const meshed = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const plain = plainClient(port)
  t.after(async () => {
    meshed.close()
    plain.close()
    await payments.close()
  })
  await waitEndpoints(payments, 'ledger', 1)
  assert.equal((await get(meshed, { id: 'meshed' })).from, 'ledger-a')
  assert.equal((await get(plain, { id: 'plain' })).from, 'ledger-a')
  // A connection that has sent nothing yet (waiting to be sorted by its first byte).
  const silent: Socket = connect(port, '127.0.0.1')
  silent.on('error', () => {})
  const silentClosed = new Promise<void>((r) => silent.once('close', () => r()))
  await new Promise<void>((r) => silent.once('connect', () => r()))
  assert.ok(serverSideHandles(port).length >= 3, 'the server holds the listener and its connections')

  await ledger.close()

  await silentClosed
  // Nothing of the server's is left open to keep the process alive (socket closes are async).
  await eventually(async () => serverSideHandles(port).length === 0, 10_000, `no listener or server-side connection on port ${port} (left: ${serverSideHandles(port).join(', ')})`)
  const again: NetServer = createServer()
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject)
    again.listen(port, '127.0.0.1', () => resolve())
  })
  await new Promise<void>((r) => again.close(() => r()))
  await unavailable(get(plain, { id: 'after' }, { deadline: Date.now() + 5000 }))
})

/** Active handles on this side of `port`: a server listening on it, or a socket it accepted. */
function serverSideHandles(port: number): string[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles()
  const out: string[] = []
  for (const h of handles) {
    if (h instanceof NetServer) {
      const a = h.address()
      if (a && typeof a === 'object' && a.port === port) out.push('listener')
    } else if (h && typeof h === 'object' && 'localPort' in h && (h as Socket).localPort === port && !(h as Socket).destroyed) {
      out.push(`socket from ${(h as Socket).remotePort}`)
    }
  }
  return out
}

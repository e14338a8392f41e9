// An instance authenticates to the daemon with its join token, then with its own certificate
// (identity issue; RELIABILITY 3.4): the daemon's port also speaks TLS with the daemon's SVID
// (spiffe://<td>/ns/weft-system/sa/weft-daemon) and takes the client's SVID as the instance's
// credential. Real daemon and meshes on loopback.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Agent, request } from 'undici'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId } from '../../src/identity/spiffe-id.js'
import { newBundle } from '../../src/identity/bundle.js'
import { clientTlsOptions } from '../../src/identity/tls-material.js'
import { call, register, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { controlMesh, statusOf } from '../helpers/control-kit.js'

const TD = 'weft.local'
const DAEMON_ID = workloadId(TD, 'weft-system', 'weft-daemon')

/** An instance of `service` with its SVID, as the API gives it. */
async function withCertificate(d: TestDaemon, service: string) {
  const inst = await register(d, { service })
  const keys = await generateKeyPair()
  const signed = await call(d.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr: await createCsr(keys, workloadId(TD, 'default', service)) })
  assert.equal(signed.status, 200, JSON.stringify(signed.body))
  const b = signed.body.bundle as { trustDomain: string; sequence: number; roots: string[] }
  const material = { certChainPem: signed.body.certChain as string[], keyPem: keys.privateKeyPem, bundle: newBundle(b.trustDomain, b.roots, b.sequence) }
  return { ...inst, material }
}

const httpsOf = (d: TestDaemon) => d.url.replace('http:', 'https:')

test('over mTLS the certificate is the instance\'s credential: its own calls need no token; another identity is 403, an unknown id 404; the daemon is checked by its SPIFFE ID', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const checkout = await withCertificate(d, 'checkout')
  const payments = await register(d, { service: 'payments' })
  const mtls = new Agent({ connect: { ...clientTlsOptions(checkout.material, DAEMON_ID), maxCachedSessions: 0 } })
  t.after(() => mtls.close())
  const viaMtls = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    request(`${httpsOf(d)}${path}`, { dispatcher: mtls, method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) })

  const beat = await viaMtls('POST', `/v1/instances/${checkout.id}/heartbeat`, {})
  assert.equal(beat.statusCode, 200, await beat.body.text())
  const bundle = await viaMtls('GET', '/v1/bundle')
  assert.equal(bundle.statusCode, 200)
  assert.equal(((await bundle.body.json()) as { trustDomain: string }).trustDomain, TD)
  const renewed = await viaMtls('POST', `/v1/instances/${checkout.id}/svid`, { csr: await createCsr(await generateKeyPair(), workloadId(TD, 'default', 'checkout')) })
  assert.equal(renewed.statusCode, 200, 'renewal over mTLS with no token')
  await renewed.body.text()

  const other = await viaMtls('POST', `/v1/instances/${payments.id}/heartbeat`, {})
  assert.equal(other.statusCode, 403)
  assert.match(((await other.body.json()) as { error: { message: string } }).error.message, /this certificate is spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout; instance .* is payments/)
  const unknown = await viaMtls('POST', '/v1/instances/checkout-gone/heartbeat', {})
  assert.equal(unknown.statusCode, 404)
  await unknown.body.text()
  const admin = await viaMtls('GET', '/v1/policy')
  assert.equal(admin.statusCode, 401, 'a certificate is no admin credential')
  await admin.body.text()

  // The client checks the daemon's identity: expecting another one, nothing is sent.
  const wrongExpectation = new Agent({ connect: { ...clientTlsOptions(checkout.material, workloadId(TD, 'default', 'payments')), maxCachedSessions: 0 } })
  t.after(() => wrongExpectation.close())
  await assert.rejects(request(`${httpsOf(d)}/v1/bundle`, { dispatcher: wrongExpectation }), /the server is spiffe:\/\/weft\.local\/ns\/weft-system\/sa\/weft-daemon, expected spiffe:\/\/weft\.local\/ns\/default\/sa\/payments/)
  // TLS without a client certificate is refused at the handshake.
  const anonymous = new Agent({ connect: { ca: [...checkout.material.bundle.roots], rejectUnauthorized: true, checkServerIdentity: () => undefined } })
  t.after(() => anonymous.close())
  await assert.rejects(request(`${httpsOf(d)}/v1/bundle`, { dispatcher: anonymous }))

  // Plaintext is unchanged: tokens.
  assert.equal((await call(d.url, 'POST', `/v1/instances/${checkout.id}/heartbeat`, undefined, {})).status, 401)
  assert.equal((await call(d.url, 'POST', `/v1/instances/${checkout.id}/heartbeat`, checkout.token, {})).status, 200)
  assert.equal((await call(d.url, 'GET', '/v1/policy', d.adminToken)).status, 200)
})

test('a mesh under a daemon moves its control connection to mTLS once it has its certificate; weft status shows it', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const m = await controlMesh(d, 'checkout')
  t.after(() => m.close())
  assert.ok(m.identity.current(), 'the mesh has its SVID')
  const deadline = Date.now() + 10_000
  let row: { id: string; state: string; control?: string } | undefined
  for (;;) {
    row = (await statusOf(d)).instances.find((i) => i.id === m.instanceId) as typeof row
    if (row?.control === 'mtls' && row.state === 'SYNCED') break
    if (Date.now() > deadline) assert.fail(`the instance's stream did not move to mTLS: ${JSON.stringify(row)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  // Its calls still work: a policy change is applied and ACKed over the mTLS stream.
  const applied = await call(d.url, 'POST', '/v1/policy', d.adminToken, 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: { timeout: 3s }\n', 'application/yaml')
  assert.equal(applied.status, 200)
  const version = applied.body.version as number
  for (;;) {
    row = (await statusOf(d)).instances.find((i) => i.id === m.instanceId) as typeof row
    if (row?.state === 'SYNCED' && (row as { ackedVersion?: number }).ackedVersion === version) break
    if (Date.now() > deadline) assert.fail(`not SYNCED at ${version}: ${JSON.stringify(row)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.equal(row!.control, 'mtls')
})

import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { call, register, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

let t: TestDaemon
before(async () => {
  t = await startTestDaemon()
})
after(() => t.daemon.close())

test('first start: admin and join token files are 0600, printed once, and only their hashes are stored', async () => {
  for (const f of ['admin.token', 'join.token', 'tokens.json']) {
    assert.equal(statSync(join(t.dataDir, f)).mode & 0o777, 0o600, `${f} is 0600`)
  }
  assert.equal(t.printed.length, 2)
  assert.ok(t.printed[0]!.includes(t.adminToken), 'the admin token is printed')
  assert.ok(t.printed[1]!.includes(t.joinToken), 'the join token is printed')
  const stored = readFileSync(join(t.dataDir, 'tokens.json'), 'utf8')
  assert.ok(!stored.includes(t.adminToken) && !stored.includes(t.joinToken), 'tokens.json holds no token in clear')
  assert.equal(statSync(t.dataDir).mode & 0o077, 0, 'the data dir is not open to others')
})

test('second start on the same data dir prints nothing and keeps the tokens', async () => {
  const first = await startTestDaemon()
  await first.daemon.close()
  const second = await startTestDaemon({ dataDir: first.dataDir })
  try {
    assert.deepEqual(second.printed, [])
    assert.equal(second.adminToken, first.adminToken)
    assert.equal((await call(second.url, 'GET', '/v1/policy', first.adminToken)).status, 200, 'the old admin token still works')
  } finally {
    await second.daemon.close()
  }
})

test('401 WEFT_ERR_UNAUTHENTICATED: no token, a malformed header, an unknown token', async () => {
  const noHeader = await call(t.url, 'GET', '/v1/policy')
  assert.equal(noHeader.status, 401)
  assert.equal(noHeader.body.error.code, 'WEFT_ERR_UNAUTHENTICATED')
  assert.equal(typeof noHeader.body.error.message, 'string')
  for (const token of ['wa.not-a-real-token', 'x'.repeat(40), `wi.${Buffer.from('ghost').toString('base64url')}.abc`]) {
    const r = await call(t.url, 'GET', '/v1/status', token)
    assert.equal(r.status, 401, token)
    assert.equal(r.body.error.code, 'WEFT_ERR_UNAUTHENTICATED')
  }
  const basic = await call(t.url, 'GET', '/v1/policy', undefined)
  assert.equal(basic.status, 401)
  assert.equal((await call(t.url, 'POST', '/v1/register', 'nope', { service: 'a' })).status, 401)
  // /healthz is the one open call.
  assert.equal((await call(t.url, 'GET', '/healthz')).status, 200)
})

test('403 WEFT_ERR_FORBIDDEN: a valid token without the right', async () => {
  const inst = await register(t, { service: 'checkout' })
  const other = await register(t, { service: 'checkout' })
  const forbidden = async (method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, token: string, body?: unknown) => {
    const r = await call(t.url, method, path, token, body)
    assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error.code, 'WEFT_ERR_FORBIDDEN')
  }
  // Join and instance tokens on admin calls.
  await forbidden('GET', '/v1/policy', t.joinToken)
  await forbidden('POST', '/v1/tokens', t.joinToken, {})
  await forbidden('GET', '/v1/status', inst.token)
  // An instance token for another id.
  await forbidden('POST', `/v1/instances/${other.id}/ack`, inst.token, { version: 1 })
  await forbidden('DELETE', `/v1/instances/${other.id}`, inst.token)
  // The admin token is not an instance (it may only DELETE one) nor a join token.
  await forbidden('POST', `/v1/instances/${inst.id}/ack`, t.adminToken, { version: 1 })
  await forbidden('POST', '/v1/register', t.adminToken, { service: 'checkout' })
  // A join token limited to one service (and namespace).
  const limited = (await call(t.url, 'POST', '/v1/tokens', t.adminToken, { services: ['payments'], namespace: 'shop' })).body.token as string
  assert.equal((await call(t.url, 'POST', '/v1/register', limited, { service: 'payments', namespace: 'shop' })).status, 201)
  await forbidden('POST', '/v1/register', limited, { service: 'checkout', namespace: 'shop' })
  await forbidden('POST', '/v1/register', limited, { service: 'payments', namespace: 'other' })
  // Another join token cannot take over a registered id, nor act on an instance it did not register.
  await forbidden('POST', '/v1/register', limited, { id: inst.id, service: 'payments', namespace: 'shop' })
  await forbidden('POST', `/v1/instances/${inst.id}/ack`, limited, { version: 1 })
})

test('instance calls accept the instance token or the join token that registered it', async () => {
  const inst = await register(t, { service: 'billing' })
  assert.equal((await call(t.url, 'POST', `/v1/instances/${inst.id}/ack`, inst.token, { version: 1 })).status, 200)
  assert.equal((await call(t.url, 'POST', `/v1/instances/${inst.id}/ack`, t.joinToken, { version: 1 })).status, 200)
  // Re-registering the same id with its join token replaces the record and its token.
  const again = await register(t, { id: inst.id, service: 'billing' })
  assert.equal(again.id, inst.id)
  assert.equal((await call(t.url, 'POST', `/v1/instances/${inst.id}/ack`, inst.token, { version: 1 })).status, 401, 'the old instance token is gone')
  assert.equal((await call(t.url, 'POST', `/v1/instances/${inst.id}/ack`, again.token, { version: 1 })).status, 200)
  // The admin token may deregister any instance.
  assert.equal((await call(t.url, 'DELETE', `/v1/instances/${inst.id}`, t.adminToken)).status, 200)
})

test('a new join token works for registration and is shown only in the answer', async () => {
  const r = await call(t.url, 'POST', '/v1/tokens', t.adminToken, {})
  assert.equal(r.status, 200)
  assert.match(r.body.token, /^wj\./)
  assert.ok(!readFileSync(join(t.dataDir, 'tokens.json'), 'utf8').includes(r.body.token))
  assert.equal((await call(t.url, 'POST', '/v1/register', r.body.token, { service: 'anything' })).status, 201)
})

test('refused calls are logged (what, from where, why) without the token sent', async () => {
  const warnings: string[] = []
  const d = await startTestDaemon({ logger: { info() {}, error() {}, warn: (m) => warnings.push(m) } })
  try {
    await call(d.url, 'POST', '/v1/policy', 'wa.guessed-secret', 'kind: Service')
    await call(d.url, 'GET', '/v1/status', d.joinToken)
    assert.equal(warnings.length, 2)
    assert.match(warnings[0]!, /refused POST \/v1\/policy from 127\.0\.0\.1: WEFT_ERR_UNAUTHENTICATED/)
    assert.match(warnings[1]!, /refused GET \/v1\/status .*WEFT_ERR_FORBIDDEN/)
    assert.ok(!warnings.join('\n').includes('guessed-secret') && !warnings.join('\n').includes(d.joinToken))
  } finally {
    await d.daemon.close()
  }
})

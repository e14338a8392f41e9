// Hostile or careless input at the daemon's door: deeply nested policy text (once fatal to the
// process), a body of the wrong content type, a join token request listing one name 200,000 times,
// NACK text with terminal escapes, and forged instance tokens probing which ids exist.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { call, register, startTestDaemon } from '../helpers/daemon.js'

test('deeply nested YAML (flow then block, the sequence that killed the daemon): 422 WEFT_E_SYNTAX each, fast, and the daemon stays up', async () => {
  const t = await startTestDaemon()
  try {
    for (const body of ['['.repeat(500_000), '- '.repeat(300_000), '['.repeat(500_000), '- '.repeat(300_000)]) {
      const t0 = Date.now()
      const r = await call(t.url, 'POST', '/v1/policy', t.adminToken, body, 'application/yaml')
      assert.equal(r.status, 422)
      assert.equal(r.body.error.code, 'WEFT_ERR_POLICY_INVALID')
      assert.equal(r.body.error.details.issues.length, 1)
      assert.equal(r.body.error.details.issues[0].code, 'WEFT_E_SYNTAX')
      assert.match(r.body.error.message, /nested more than 64 levels deep; refused before parsing/)
      assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`)
    }
    assert.equal((await call(t.url, 'GET', '/healthz')).status, 200)
    assert.equal((await call(t.url, 'GET', '/v1/policy', t.adminToken)).body.resources.length, 0)
  } finally {
    await t.daemon.close()
  }
})

test('POST /v1/policy takes YAML or JSON (or no content type); another type is 415 before the body is read', async () => {
  const t = await startTestDaemon()
  try {
    const doc = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: {}\n'
    for (const type of ['application/yaml', 'text/yaml; charset=utf-8', 'application/json']) {
      assert.equal((await call(t.url, 'POST', '/v1/policy?dryRun=true', t.adminToken, doc, type)).status, 200, type)
    }
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
      const r = await call(t.url, 'POST', '/v1/policy', t.adminToken, doc, type)
      assert.equal(r.status, 415, type)
      assert.match(r.body.error.message, /is not a policy: send YAML or JSON/)
    }
    // The type is checked after the admin token: an anonymous caller learns nothing.
    assert.equal((await call(t.url, 'POST', '/v1/policy', 'wa.nope', doc, 'application/octet-stream')).status, 401)
  } finally {
    await t.daemon.close()
  }
})

test('POST /v1/tokens: each service name once, "*" alone stands for any, and a bound on distinct names', async () => {
  const t = await startTestDaemon()
  try {
    const many = await call(t.url, 'POST', '/v1/tokens', t.adminToken, { services: Array(200_000).fill('a') })
    assert.equal(many.status, 200)
    const tokens = JSON.parse(readFileSync(join(t.dataDir, 'tokens.json'), 'utf8')) as { join: { services: string[] }[] }
    assert.deepEqual(tokens.join.at(-1)!.services, ['a'])
    await call(t.url, 'POST', '/v1/tokens', t.adminToken, { services: ['a', '*', 'b'] })
    assert.deepEqual((JSON.parse(readFileSync(join(t.dataDir, 'tokens.json'), 'utf8')) as typeof tokens).join.at(-1)!.services, ['*'])
    const wide = await call(t.url, 'POST', '/v1/tokens', t.adminToken, { services: Array.from({ length: 300 }, (_, i) => `s${i}`) })
    assert.equal(wide.status, 400)
    assert.match(wide.body.error.message, /at most 256 different names/)
  } finally {
    await t.daemon.close()
  }
})

test('NACK text is stored without control characters (terminal escapes, bidi overrides); newlines stay', async () => {
  const t = await startTestDaemon()
  try {
    const inst = await register(t, { service: 'payments' })
    const error = 'Service/payments: bad\u001b[2J\u001b]0;owned\u0007\nline two\u202e\u0000'
    assert.equal((await call(t.url, 'POST', `/v1/instances/${inst.id}/ack`, inst.token, { version: 1, error })).status, 200)
    const st = (await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances[0]
    assert.equal(st.nack.error, 'Service/payments: bad[2J]0;owned\nline two')
  } finally {
    await t.daemon.close()
  }
})

test('a forged instance token gets the same 401 whether its id exists or not (no existence oracle)', async () => {
  const t = await startTestDaemon()
  try {
    const real = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    const answers = []
    for (const id of [real.id, 'payments-000000000000']) {
      const forged = `wi.${Buffer.from(id).toString('base64url')}.garbage`
      for (const [method, path, body] of [['POST', `/v1/instances/${id}/ack`, { version: 1 }], ['GET', `/v1/instances/${id}/watch`, undefined], ['POST', `/v1/instances/${id}/heartbeat`, {}]] as const) {
        const r = await call(t.url, method, path, forged, body)
        answers.push([r.status, r.body.error.code, r.body.error.message])
      }
    }
    assert.equal(new Set(answers.map((a) => JSON.stringify(a))).size, 1, JSON.stringify(answers))
    assert.equal(answers[0]![0], 401)
    // The real token still works; the join token that registered it may learn it is gone (404).
    assert.equal((await call(t.url, 'POST', `/v1/instances/${real.id}/heartbeat`, real.token, {})).status, 200)
    assert.equal((await call(t.url, 'POST', '/v1/instances/payments-000000000000/ack', t.joinToken, { version: 1 })).status, 404)
  } finally {
    await t.daemon.close()
  }
})

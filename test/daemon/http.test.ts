import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, test } from 'node:test'
import { request } from 'undici'
import { Router } from '../../src/daemon/router.js'
import { createDaemonServer } from '../../src/daemon/server.js'
import { silentLogger } from '../../src/util/logger.js'
import { applyPolicy, call, SERVICE_YAML, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

let t: TestDaemon
before(async () => {
  t = await startTestDaemon()
})
after(() => t.daemon.close())

const isErrorBody = (b: unknown) => {
  const e = (b as { error?: { code?: unknown; message?: unknown } }).error
  return typeof e?.code === 'string' && e.code.startsWith('WEFT_ERR_') && typeof e.message === 'string'
}

test('a 2 MiB body → 413 (the client reads the answer), and nothing is stored', async () => {
  const big = SERVICE_YAML + `# ${'x'.repeat(2 * 1024 * 1024)}\n`
  const r = await applyPolicy(t, big)
  assert.equal(r.status, 413)
  assert.equal(r.body.error.code, 'WEFT_ERR_PAYLOAD_TOO_LARGE')
  // Without a content-length (chunked), counted as it arrives.
  const chunked = await request(`${t.url}/v1/policy`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/yaml' },
    body: Readable.from((function* () {
      for (let i = 0; i < 32; i++) yield Buffer.alloc(64 * 1024, 0x20)
    })()),
  })
  assert.equal(chunked.statusCode, 413)
  assert.ok(isErrorBody(await chunked.body.json()))
  assert.equal((await call(t.url, 'GET', '/v1/policy', t.adminToken)).body.resources.length, 0)
})

test('bad JSON → 400 naming the problem; a non-object → 400', async () => {
  const r = await call(t.url, 'POST', '/v1/register', t.joinToken, '{"service": "a",', 'application/json')
  assert.equal(r.status, 400)
  assert.equal(r.body.error.code, 'WEFT_ERR_INVALID_ARG')
  assert.match(r.body.error.message, /not valid JSON/)
  const arr = await call(t.url, 'POST', '/v1/register', t.joinToken, '[1,2]', 'application/json')
  assert.equal(arr.status, 400)
  assert.match(arr.body.error.message, /JSON object/)
  const empty = await call(t.url, 'POST', '/v1/rollback', t.adminToken, '', 'application/json')
  assert.equal(empty.status, 400)
})

test('unknown path → 404, wrong method → 405 with allow, every error in the one body shape', async () => {
  const nf = await call(t.url, 'GET', '/v1/nope', t.adminToken)
  assert.equal(nf.status, 404)
  assert.equal(nf.body.error.code, 'WEFT_ERR_NOT_FOUND')
  const m = await call(t.url, 'PATCH', '/v1/policy', t.adminToken)
  assert.equal(m.status, 405)
  assert.equal(m.body.error.code, 'WEFT_ERR_METHOD_NOT_ALLOWED')
  assert.equal(m.headers.allow, 'POST, GET')
  for (const r of [nf, m]) assert.ok(isErrorBody(r.body))
  assert.equal((await call(t.url, 'GET', '/v1/instances/%E0%A4%A/watch', t.adminToken)).status, 400, 'malformed percent-encoding')
})

test('register fields are checked, each refusal naming the field', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /service is required/],
    [{ service: 'Payments' }, /service must be a DNS-style name/],
    [{ service: 'a', port: 0, address: '127.0.0.1' }, /port must be an integer from 1 to 65535/],
    [{ service: 'a', port: 70000, address: '127.0.0.1' }, /port/],
    [{ service: 'a', port: 80 }, /address is required with port/],
    [{ service: 'a', address: '127.0.0.1:80', port: 80 }, /address must be an IP address or a hostname/],
    [{ service: 'a', protocol: 'tcp' }, /protocol must be "http" or "grpc"/],
    [{ service: 'a', labels: { version: 2 } }, /labels\.version must be a string/],
    [{ service: 'a', labels: ['x'] }, /labels must be an object/],
    [{ service: 'a', namespace: 'Bad_NS' }, /namespace must be a DNS-style name/],
    [{ service: 'a', id: 'has space' }, /^id must be/],
    [{ service: 'a', lables: {} }, /unknown field "lables"/],
    [{ service: 'a', locality: { zone: 3 } }, /locality\.zone/],
  ]
  for (const [body, message] of cases) {
    const r = await call(t.url, 'POST', '/v1/register', t.joinToken, body)
    assert.equal(r.status, 400, JSON.stringify(body))
    assert.match(r.body.error.message, message, JSON.stringify(body))
  }
  const ok = await call(t.url, 'POST', '/v1/register', t.joinToken, { service: 'a', address: '::1', port: 80, protocol: 'grpc', labels: { 'app.kubernetes.io/version': 'v2' } })
  assert.equal(ok.status, 201)
  const eps = (await call(t.url, 'GET', '/v1/endpoints', t.adminToken)).body.endpoints
  assert.equal(eps['default/a'][0].address, '[::1]:80')
})

test('ack, update and token bodies are checked too', async () => {
  const reg = (await call(t.url, 'POST', '/v1/register', t.joinToken, { service: 'b' })).body
  const ack = await call(t.url, 'POST', `/v1/instances/${reg.id}/ack`, reg.token, { version: -1 })
  assert.equal(ack.status, 400)
  assert.match(ack.body.error.message, /version must be a non-negative integer/)
  const nackType = await call(t.url, 'POST', `/v1/instances/${reg.id}/ack`, reg.token, { version: 1, error: { x: 1 } })
  assert.match(nackType.body.error.message, /error must be a string/)
  const put = await call(t.url, 'PUT', `/v1/instances/${reg.id}`, reg.token, { port: 80 })
  assert.equal(put.status, 400)
  const tok = await call(t.url, 'POST', '/v1/tokens', t.adminToken, { services: [] })
  assert.equal(tok.status, 400)
  const watchBadVersion = await call(t.url, 'GET', `/v1/instances/${reg.id}/watch?version=abc`, reg.token)
  assert.equal(watchBadVersion.status, 400)
})

test('daemon.json holds { url, pid } while running and is removed by close()', async () => {
  const d = await startTestDaemon()
  const file = join(d.dataDir, 'daemon.json')
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { url: d.url, pid: process.pid })
  await d.daemon.close()
  assert.throws(() => readFileSync(file), /ENOENT/)
})

test('a torn temp file in the data dir does not stop the daemon from starting', async () => {
  const d = await startTestDaemon()
  await applyPolicy(d, SERVICE_YAML)
  await d.daemon.close()
  writeFileSync(join(d.dataDir, '.policy.json.99999.0badc0de.tmp'), '{"format":1,"version":7,"revision":')
  writeFileSync(join(d.dataDir, '.tokens.json.99999.0badc0de.tmp'), '')
  const again = await startTestDaemon({ dataDir: d.dataDir })
  try {
    const p = (await call(again.url, 'GET', '/v1/policy', again.adminToken)).body
    assert.equal(p.resources.length, 1)
  } finally {
    await again.daemon.close()
  }
})

test('the listen address is checked', async () => {
  await assert.rejects(startTestDaemon({ listen: 'localhost' }), /listen must be host:port/)
  await assert.rejects(startTestDaemon({ listen: '127.0.0.1:99999' }), /listen must be host:port/)
})

test('server timeouts bound sending a request, never a stream being answered', async () => {
  // The daemon's server, with its timeouts shrunk and checked often: a stream answered for 4x the
  // request timeout must arrive whole; a client that never finishes its headers is cut.
  const router = new Router().add('GET', '/stream', async ({ req, res }) => {
    req.socket.setTimeout(0)
    res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    res.flushHeaders()
    let n = 0
    const timer = setInterval(() => {
      res.write(`{"n":${n}}\n`)
      if (++n === 12) {
        clearInterval(timer)
        res.end()
      }
    }, 100)
    res.on('close', () => clearInterval(timer))
  })
  const server = createDaemonServer(router, silentLogger, { headersTimeout: 300, requestTimeout: 300, keepAliveTimeout: 100, connectionsCheckingInterval: 50 })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  try {
    const res = await request(`http://127.0.0.1:${port}/stream`, { bodyTimeout: 0 })
    const text = await res.body.text()
    assert.equal(text.trim().split('\n').length, 12, 'the whole stream arrived')
    // Half a request line, then silence: the headers timeout closes it.
    const closed = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('GET /stream HTTP/1.1\r\nhost: x\r\n'))
      s.on('data', () => {})
      s.on('close', () => resolve(true))
      setTimeout(() => resolve(false), 5000).unref()
    })
    assert.ok(closed, 'a slow sender is cut')
  } finally {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
})

test('a start that fails (port in use) releases the data dir for the next start', async () => {
  const busy = await startTestDaemon()
  try {
    const dir = mkdtempSync(join(tmpdir(), 'weft-daemon-'))
    await assert.rejects(startTestDaemon({ dataDir: dir, listen: `127.0.0.1:${busy.daemon.port}` }), /EADDRINUSE/)
    const ok = await startTestDaemon({ dataDir: dir })
    await ok.daemon.close()
  } finally {
    await busy.daemon.close()
  }
})

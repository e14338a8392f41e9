import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { quietMesh, service } from '../helpers/mesh.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

/** Two endpoints: the first always answers 503, the second 200 (round-robin tries the first first). */
async function pair(): Promise<{ a: Upstream; b: Upstream }> {
  const a = await startUpstream('a', (_req, res) => {
    res.statusCode = 503
    res.end('busy')
  })
  const b = await startUpstream('b')
  return { a, b }
}

const spec = (a: Upstream, b: Upstream, retries: Record<string, unknown> = {}) => [service('payments', {
  endpoints: [{ address: a.address }, { address: b.address }],
  loadBalancer: { policy: 'round-robin' },
  retries: { backoff: { base: '1ms', max: '1ms' }, ...retries },
  outlierDetection: { enabled: false },
})]

test('a POST without an Idempotency-Key is not retried after it was sent', async () => {
  const { a, b } = await pair()
  const mesh = await quietMesh(spec(a, b))
  try {
    const res = await mesh.request('http://payments/charge', { method: 'POST', body: 'x' })
    assert.equal(res.statusCode, 503)
    await res.body.dump()
    assert.equal(a.hits + b.hits, 1)
  } finally {
    await mesh.close()
    await a.close()
    await b.close()
  }
})

test('a POST with an Idempotency-Key is retried with the same body and key', async () => {
  const { a, b } = await pair()
  const mesh = await quietMesh(spec(a, b))
  try {
    const res = await mesh.request('http://payments/charge', { method: 'POST', body: '{"amount":1}', headers: { 'idempotency-key': 'k-1' } })
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), 'ok from b')
    assert.equal(a.seen[0]!.body, '{"amount":1}')
    assert.equal(b.seen[0]!.body, '{"amount":1}')
    assert.equal(b.seen[0]!.headers['idempotency-key'], 'k-1')
  } finally {
    await mesh.close()
    await a.close()
    await b.close()
  }
})

test('retries.idempotencyKey: auto adds one key per call, the same on every attempt', async () => {
  const { a, b } = await pair()
  const mesh = await quietMesh(spec(a, b, { idempotencyKey: 'auto' }))
  try {
    const res = await mesh.fetch('http://payments/charge', { method: 'POST', body: 'x' })
    assert.equal(res.status, 200)
    await res.text()
    const key = a.seen[0]!.headers['idempotency-key']
    assert.match(String(key), /^[0-9a-f-]{36}$/)
    assert.equal(b.seen[0]!.headers['idempotency-key'], key)
  } finally {
    await mesh.close()
    await a.close()
    await b.close()
  }
})

test('a streamed body within 64 KiB is replayed; past 64 KiB it is never retried', async () => {
  const { a, b } = await pair()
  const mesh = await quietMesh(spec(a, b))
  try {
    const chunk = Buffer.alloc(16 * 1024, 'a')
    const small = await mesh.request('http://payments/upload', { method: 'PUT', body: Readable.from([chunk, chunk]) })
    assert.equal(small.statusCode, 200, '32 KiB streamed body replayed on the retry')
    await small.body.dump()
    assert.equal(b.seen.at(-1)!.body.length, 32 * 1024)

    const big = await mesh.request('http://payments/upload', { method: 'PUT', body: Readable.from(Array.from({ length: 6 }, () => chunk)) })
    assert.equal(big.statusCode, 503, '96 KiB streamed body went past the replay buffer: not retried')
    await big.body.dump()
    assert.equal(a.seen.at(-1)!.body.length, 96 * 1024)
  } finally {
    await mesh.close()
    await a.close()
    await b.close()
  }
})

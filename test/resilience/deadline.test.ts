import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isWeftError } from '../../src/index.js'
import { quietMesh, route, service } from '../helpers/mesh.js'
import { startUpstream } from '../helpers/upstream.js'

test('a deadline exceeded fails with WEFT_ERR_DEADLINE_EXCEEDED without waiting for the upstream', async () => {
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  const up = await startUpstream('hang', async (_req, res) => {
    await held
    res.end('late')
  })
  const mesh = await quietMesh([
    service('payments', { endpoints: [{ address: up.address }], timeout: '5s' }),
    route('slow-path', { service: 'payments', rules: [{ name: 'reports', matches: [{ path: { prefix: '/reports' } }], timeout: '150ms' }] }),
  ])
  try {
    const t0 = performance.now()
    const err = await mesh.request('http://payments/reports/q3').catch((e: unknown) => e)
    const waited = performance.now() - t0
    assert.ok(isWeftError(err, 'WEFT_ERR_DEADLINE_EXCEEDED'), String(err))
    assert.equal(err.httpStatus, 504)
    assert.equal(err.grpcStatus, 4)
    assert.equal(err.details.route, 'reports')
    assert.equal(err.details.timeoutMs, 150)
    assert.match(err.message, /timeout 150ms of route rule reports/)
    // Not a timing assertion on speed: only that the call did not wait for the held upstream,
    // which never answers until released below.
    assert.ok(waited < 4000, `returned while the upstream still held the request (${Math.round(waited)}ms)`)
    assert.equal(up.hits, 1)
  } finally {
    release()
    await mesh.close()
    await up.close()
  }
})

test('a deadline propagated in weft-deadline-ms shortens the call and is passed on reduced', async () => {
  const up = await startUpstream('echo')
  const mesh = await quietMesh([service('payments', { endpoints: [{ address: up.address }], timeout: '10s' })])
  try {
    const res = await mesh.request('http://payments/x', { headers: { 'weft-deadline-ms': '800' } })
    await res.body.dump()
    const sent = Number(up.seen.at(-1)!.headers['weft-deadline-ms'])
    assert.ok(sent <= 800 && sent > 0, `next hop sees the caller's remaining deadline (${sent})`)
    const expired = await mesh.request('http://payments/x', { headers: { 'weft-deadline-ms': '0' } }).catch((e: unknown) => e)
    assert.ok(isWeftError(expired, 'WEFT_ERR_DEADLINE_EXCEEDED'))
    assert.equal(expired.details.propagatedDeadline, true)
    assert.equal(up.hits, 1, 'an already-expired deadline sends nothing')
  } finally {
    await mesh.close()
    await up.close()
  }
})

test('per-try timeout aborts a slow attempt and retries on another endpoint', async () => {
  const slow = await startUpstream('slow', async (_req, res) => {
    await new Promise((r) => setTimeout(r, 2000))
    res.end('slow')
  })
  const fast = await startUpstream('fast')
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: slow.address }, { address: fast.address }],
    loadBalancer: { policy: 'round-robin' },
    retries: { attempts: 1, perTryTimeout: '100ms' },
  })])
  try {
    const bodies = []
    for (let i = 0; i < 4; i++) bodies.push(await (await mesh.request('http://payments/x')).body.text())
    assert.deepEqual(bodies, ['ok from fast', 'ok from fast', 'ok from fast', 'ok from fast'])
    assert.match(await mesh.metrics(), /weft_retries_total\{[^}]*reason="per-try-timeout"\} [1-9]/)
  } finally {
    await mesh.close()
    await slow.close()
    await fast.close()
  }
})

test('a caller abort cancels the call with the caller\'s own reason', async () => {
  const up = await startUpstream('hang', async (_req, res) => {
    await new Promise((r) => setTimeout(r, 1000))
    res.end()
  })
  const mesh = await quietMesh([service('payments', { endpoints: [{ address: up.address }] })])
  try {
    const ac = new AbortController()
    const p = mesh.fetch('http://payments/x', { signal: ac.signal })
    setTimeout(() => ac.abort(), 50)
    await assert.rejects(p, (e: Error) => e.name === 'AbortError')
  } finally {
    await mesh.close()
    await up.close()
  }
})

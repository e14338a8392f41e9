// RELIABILITY L2, last clause: total time including retries never exceeds the caller's deadline.
// An upstream that answers 503 slowly, retries that would take ~10× the deadline: the call ends
// with WEFT_ERR_DEADLINE_EXCEEDED naming the deadline, each attempt carries only what is left of
// it (weft-deadline-ms, shrinking and never 0 on the wire), and no attempt is sent after it runs
// out. Real node:http upstream on loopback; no assertion on speed — only on what was sent.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isWeftError } from '../../src/index.js'
import { quietMesh, service } from '../helpers/mesh.js'
import { startUpstream } from '../helpers/upstream.js'

test('retries stop at the caller\'s deadline: each attempt carries what is left of it, and none starts after it', async () => {
  const up = await startUpstream('slow-503', (_req, res) => {
    setTimeout(() => {
      res.statusCode = 503
      res.end('busy')
    }, 120)
  })
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: up.address }],
    timeout: '500ms',
    // Without the deadline: 10 attempts of ~120 ms plus back-off, ~1.5 s.
    retries: { attempts: 9, backoff: { base: '20ms', max: '20ms' }, budget: { ratio: 1, minPerSecond: 100 } },
    circuitBreaker: { enabled: false },
    outlierDetection: { enabled: false },
  })])
  try {
    const err = await mesh.request('http://payments/charge').catch((e: unknown) => e)
    assert.ok(isWeftError(err, 'WEFT_ERR_DEADLINE_EXCEEDED'), String(err))
    assert.equal(err.details.timeoutMs, 500)
    assert.ok(up.hits >= 2, `it did retry before the deadline (${up.hits} attempts)`)
    assert.ok(up.hits <= 4, `retries stopped at the deadline: ${up.hits} attempts of ~140 ms fit in 500 ms, not 10`)
    // What each attempt was told: the rest of the one deadline, shrinking, never a fresh 500 ms.
    const budgets = up.seen.map((s) => Number(s.headers['weft-deadline-ms']))
    // A positive rest on every attempt: none was sent once the deadline had run out (it would carry 0).
    assert.ok(budgets.every((b) => b > 0 && b <= 500), `each attempt carries a positive rest of the deadline: ${budgets.join(', ')}`)
    for (let i = 1; i < budgets.length; i++) assert.ok(budgets[i]! < budgets[i - 1]!, `the rest shrinks attempt by attempt: ${budgets.join(', ')}`)
    // And no more attempts arrive after the call ended.
    const hits = up.hits
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(up.hits, hits, 'no attempt after the call ended')
  } finally {
    await mesh.close()
    await up.close()
  }
})

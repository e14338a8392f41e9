import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SpanKind } from '@opentelemetry/api'
import { quietMesh, service } from '../helpers/mesh.js'
import { startUpstream } from '../helpers/upstream.js'
import { memoryTracing } from '../helpers/tracing.js'
import { parseTraceparent, traceparentFor } from '../../src/telemetry/tracing.js'

test('one CLIENT span per logical call, retries as span events, and its context in traceparent', async () => {
  const { exporter, tracer, shutdown } = memoryTracing()
  const bad = await startUpstream('bad', (_req, res) => {
    res.statusCode = 503
    res.end()
  })
  const good = await startUpstream('good')
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: bad.address }, { address: good.address }],
    loadBalancer: { policy: 'round-robin' },
    retries: { backoff: { base: '1ms', max: '1ms' } },
  })], { tracer })
  try {
    const res = await mesh.request('http://payments/charge')
    assert.equal(res.statusCode, 200)
    await res.body.dump()
    const spans = exporter.getFinishedSpans()
    assert.equal(spans.length, 1, 'one span for the call, not one per attempt')
    const span = spans[0]!
    assert.equal(span.name, 'payments default')
    assert.equal(span.kind, SpanKind.CLIENT)
    assert.equal(span.attributes['http.response.status_code'], 200)
    assert.deepEqual(span.events.map((e) => [e.name, e.attributes?.['weft.reason']]), [['weft.retry', '503']])
    const tp = String(good.seen[0]!.headers.traceparent)
    assert.equal(tp, `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`)
    assert.equal(bad.seen[0]!.headers.traceparent, tp, 'every attempt carries the call span as parent')
  } finally {
    await mesh.close()
    await bad.close()
    await good.close()
    await shutdown()
  }
})

test('without an SDK a valid traceparent is still sent; a caller-set one is kept', async () => {
  const up = await startUpstream('a')
  const mesh = await quietMesh([service('payments', { endpoints: [{ address: up.address }] })])
  try {
    await (await mesh.request('http://payments/x')).body.dump()
    assert.match(String(up.seen[0]!.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    const mine = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    await (await mesh.request('http://payments/x', { headers: { traceparent: mine } })).body.dump()
    assert.equal(up.seen[1]!.headers.traceparent, mine)
  } finally {
    await mesh.close()
    await up.close()
  }
})

test('fresh traceparents stay valid and distinct across batch refills', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 1000; i++) {
    const tp = traceparentFor(undefined)
    const parsed = parseTraceparent(tp)
    assert.ok(parsed, tp)
    assert.equal(parsed.flags, 1)
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    seen.add(parsed.traceId)
  }
  assert.equal(seen.size, 1000)
})

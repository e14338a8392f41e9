// The SERVER span of a meshed node:http server under an OpenTelemetry SDK: a child of the caller's
// remote span from traceparent (the span context the telemetry layer builds for it), its sampled
// flag obeyed by the SDK's parent-based sampler, and the parent of the handler's outbound calls.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, test } from 'node:test'
import { SpanKind } from '@opentelemetry/api'
import { AlwaysOffSampler, ParentBasedSampler, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { request } from 'undici'
import { currentContext, type Mesh } from '../../src/index.js'
import { quietMesh, service } from '../helpers/mesh.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import { memoryTracing } from '../helpers/tracing.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CALLER_SPAN = '00f067aa0ba902b7'

const { exporter, tracer, shutdown } = memoryTracing()
let ledger: Upstream
let mesh: Mesh
let port: number

before(async () => {
  ledger = await startUpstream('ledger')
  mesh = await quietMesh([service('ledger', { endpoints: [{ address: ledger.address }] })], { service: 'payments', tracer })
  // The handler calls ledger through the mesh, forwarding no header itself.
  const server = http.createServer((_req, res) => {
    void mesh.request('http://ledger/entries').then(async (r) => {
      await r.body.dump()
      res.end('ok')
    })
  })
  port = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })).port
})
after(async () => {
  await mesh.close()
  await ledger.close()
  await shutdown()
})

async function call(headers: Record<string, string>): Promise<ReadableSpan[]> {
  exporter.reset()
  const res = await request(`http://127.0.0.1:${port}/charge`, { headers })
  assert.equal(await res.body.text(), 'ok')
  await new Promise((resolve) => setImmediate(resolve)) // the span ends when the response closes
  return exporter.getFinishedSpans()
}

test('a caller\'s sampled traceparent makes the server span a child of the remote span, and the parent of the handler\'s calls', async () => {
  const seen = ledger.seen.length
  const spans = await call({ traceparent: `00-${TRACE}-${CALLER_SPAN}-01` })
  const server = spans.find((s) => s.kind === SpanKind.SERVER)
  assert.ok(server, `a SERVER span was exported (got ${spans.map((s) => s.name).join(', ')})`)
  assert.equal(server.spanContext().traceId, TRACE, 'the caller\'s trace is joined')
  assert.equal(server.parentSpanContext?.spanId, CALLER_SPAN, 'the caller\'s span is the parent')
  assert.equal(server.parentSpanContext?.isRemote, true, 'the parent is marked remote')
  const client = spans.find((s) => s.kind === SpanKind.CLIENT)
  assert.ok(client, 'the outbound call made a CLIENT span')
  assert.equal(client.parentSpanContext?.spanId, server.spanContext().spanId, 'the outbound call is a child of the server span')
  assert.equal(ledger.seen[seen]!.headers.traceparent, `00-${TRACE}-${client.spanContext().spanId}-01`, 'ledger sees the same trace')
})

test('an unsampled traceparent is obeyed: no span is recorded, and the trace id still goes on', async () => {
  const seen = ledger.seen.length
  const spans = await call({ traceparent: `00-${TRACE}-${CALLER_SPAN}-00` })
  assert.deepEqual(spans.map((s) => s.name), [], 'the parent-based sampler records nothing')
  assert.match(String(ledger.seen[seen]!.headers.traceparent), new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`))
})

test('without a traceparent the server span starts a trace of its own', async () => {
  const spans = await call({})
  const server = spans.find((s) => s.kind === SpanKind.SERVER)
  assert.ok(server)
  assert.equal(server.parentSpanContext, undefined, 'a root span')
  assert.notEqual(server.spanContext().traceId, TRACE)
})

test('a new trace the SDK leaves unsampled stays one unsampled trace downstream', async () => {
  const off = memoryTracing(new ParentBasedSampler({ root: new AlwaysOffSampler() }))
  const m = await quietMesh([service('ledger', { endpoints: [{ address: ledger.address }] })], { service: 'payments', tracer: off.tracer })
  try {
    const server = http.createServer((_req, res) => {
      const traceId = currentContext()?.traceId
      void m.request('http://ledger/entries').then(async (r) => {
        await r.body.dump()
        res.end(traceId)
      })
    })
    const p = (await m.listen(server, { port: 0, host: '127.0.0.1' })).port
    const seen = ledger.seen.length
    const res = await request(`http://127.0.0.1:${p}/charge`)
    const traceId = await res.body.text()
    assert.match(traceId, /^[0-9a-f]{32}$/)
    assert.equal(ledger.seen[seen]!.headers.traceparent?.slice(0, 35), `00-${traceId}`, 'the call continues the server span\'s trace')
    assert.ok(String(ledger.seen[seen]!.headers.traceparent).endsWith('-00'), 'and says it is not sampled, as the SDK decided')
    assert.deepEqual(off.exporter.getFinishedSpans().map((s) => s.name), [])
  } finally {
    await m.close()
    await off.shutdown()
  }
})

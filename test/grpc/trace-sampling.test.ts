// A meshed gRPC server under an OpenTelemetry SDK passes the caller's sampling decision on to the
// calls its handler makes: with an unsampled traceparent in the metadata, nothing is recorded and
// the next hop gets the same trace, still unsampled (not a new sampled root trace).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SpanKind } from '@opentelemetry/api'
import { quietMesh, service } from '../helpers/mesh.js'
import { startUpstream } from '../helpers/upstream.js'
import { memoryTracing } from '../helpers/tracing.js'
import { get, grpc, ledgerImpl, LedgerClient, startMeshedLedger, type Ledger } from '../helpers/grpc-kit.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CALLER_SPAN = '00f067aa0ba902b7'

test('an unsampled traceparent on a gRPC call stays one unsampled trace through the handler\'s HTTP call', async (t) => {
  const { exporter, tracer, shutdown } = memoryTracing()
  const audit = await startUpstream('audit')
  const mesh = await quietMesh([service('audit', { endpoints: [{ address: audit.address }] })], { service: 'ledger', tracer, inbound: { shedding: false } })
  const impl = ledgerImpl('ledger')
  // Get calls audit through the mesh before answering, forwarding no header itself.
  impl.Get = (call: grpc.ServerUnaryCall<{ id: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    void mesh.request('http://audit/log').then(async (r) => {
      await r.body.dump()
      cb(null, { id: call.request.id, from: 'ledger', amount: 1 })
    }, (err: Error) => cb(err))
  }
  const ledger = await startMeshedLedger(mesh, impl)
  const client = new LedgerClient(ledger.address, grpc.credentials.createInsecure()) as unknown as Ledger
  t.after(async () => {
    client.close()
    await mesh.close()
    await audit.close()
    await shutdown()
  })

  const md = new grpc.Metadata()
  md.set('traceparent', `00-${TRACE}-${CALLER_SPAN}-00`)
  assert.equal((await get(client, { id: 'u' }, {}, md)).from, 'ledger')
  assert.match(String(audit.seen[0]!.headers.traceparent), new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`), 'the caller\'s trace and its "not sampled" go on')
  assert.deepEqual(exporter.getFinishedSpans().map((s) => s.name), [], 'the SDK recorded nothing')

  md.set('traceparent', `00-${TRACE}-${CALLER_SPAN}-01`)
  await get(client, { id: 's' }, {}, md)
  const spans = exporter.getFinishedSpans()
  const server = spans.find((s) => s.kind === SpanKind.SERVER)
  const call = spans.find((s) => s.kind === SpanKind.CLIENT)
  assert.equal(server?.parentSpanContext?.spanId, CALLER_SPAN, 'sampled: the server span is the remote span\'s child')
  assert.equal(call?.parentSpanContext?.spanId, server?.spanContext().spanId, 'and the parent of the handler\'s call')
  assert.equal(audit.seen[1]!.headers.traceparent, `00-${TRACE}-${call!.spanContext().spanId}-01`)
})

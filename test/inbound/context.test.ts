import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { request } from 'undici'
import { createMesh, type Mesh } from '../../src/index.js'
import { metricValue, service } from '../helpers/mesh.js'

const quiet = { info() {}, warn() {}, error() {} }

/** A node:http service whose handler may call one other service, with no header code at all. */
async function hop(name: string, calls: string | undefined, ports: Record<string, number>): Promise<{ mesh: Mesh; seen: http.IncomingHttpHeaders[] }> {
  const config = calls ? [service(calls, { endpoints: [{ address: `127.0.0.1:${ports[calls]}` }] })] : []
  const mesh = await createMesh({ service: name, logger: quiet, config })
  const seen: http.IncomingHttpHeaders[] = []
  const server = http.createServer(async (req, res) => {
    seen.push(req.headers)
    await new Promise((r) => setTimeout(r, 25)) // time passes in every hop
    if (!calls) return res.end('leaf')
    const down = await mesh.request(`http://${calls}/work`)
    res.end(`${name}>${await down.body.text()}`)
  })
  ports[name] = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })).port
  return { mesh, seen }
}

test('A → B → C with no header code in the handlers: C sees A\'s deadline, reduced, and one trace id across the three', async () => {
  const ports: Record<string, number> = {}
  const c = await hop('c', undefined, ports)
  const b = await hop('b', 'c', ports)
  const a = await hop('a', 'b', ports)
  try {
    const res = await request(`http://127.0.0.1:${ports.a}/start`, {
      headers: { 'weft-deadline-ms': '3000', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    })
    assert.equal(await res.body.text(), 'a>b>leaf')
    const [atB, atC] = [b.seen.at(-1)!, c.seen.at(-1)!]
    const deadlineAtB = Number(atB['weft-deadline-ms'])
    const deadlineAtC = Number(atC['weft-deadline-ms'])
    assert.ok(deadlineAtB < 3000 && deadlineAtB > 0, `B got the rest of A's deadline (${deadlineAtB})`)
    assert.ok(deadlineAtC < deadlineAtB && deadlineAtC > 0, `C got less again (${deadlineAtC} < ${deadlineAtB})`)
    const traceOf = (h: http.IncomingHttpHeaders) => String(h.traceparent).split('-')[1]
    assert.equal(traceOf(atB), '0af7651916cd43dd8448eb211c80319c')
    assert.equal(traceOf(atC), '0af7651916cd43dd8448eb211c80319c')
    assert.notEqual(String(atB.traceparent).split('-')[2], String(atC.traceparent).split('-')[2], 'each hop has its own span id')
    assert.equal(atB['weft-caller'], 'a')
    assert.equal(atC['weft-caller'], 'a,b', 'the caller chain grows hop by hop')
    // Each server labels its RED metrics with the immediate caller.
    assert.equal(metricValue(await b.mesh.metrics(), 'http_server_request_duration_seconds_count', { source_service: 'a', destination_service: 'b' }), 1)
    assert.equal(metricValue(await c.mesh.metrics(), 'http_server_request_duration_seconds_count', { source_service: 'b', destination_service: 'c' }), 1)
  } finally {
    await a.mesh.close()
    await b.mesh.close()
    await c.mesh.close()
  }
})

test('a request with no trace starts one, and calls made outside any handler carry just this service as the caller', async () => {
  const ports: Record<string, number> = {}
  const c = await hop('c', undefined, ports)
  const b = await hop('b', 'c', ports)
  const outside = await createMesh({ service: 'cron', logger: quiet, config: [service('b', { endpoints: [{ address: `127.0.0.1:${ports.b}` }] })] })
  try {
    const res = await outside.request('http://b/job')
    assert.equal(await res.body.text(), 'b>leaf')
    const [atB, atC] = [b.seen.at(-1)!, c.seen.at(-1)!]
    assert.equal(atB['weft-caller'], 'cron')
    assert.equal(atC['weft-caller'], 'cron,b')
    assert.equal(String(atB.traceparent).split('-')[1], String(atC.traceparent).split('-')[1], 'one trace from the first call on')
    assert.equal(atB['weft-deadline-ms'] !== undefined, true)
  } finally {
    await outside.close()
    await b.mesh.close()
    await c.mesh.close()
  }
})

test('a caller chain is bounded and a malformed caller name never becomes a label value', async () => {
  const ports: Record<string, number> = {}
  const c = await hop('c', undefined, ports)
  try {
    const long = Array.from({ length: 20 }, (_, i) => `s${i}`).join(',')
    for (const caller of [long, 'Not A Name!', '../../etc']) {
      const res = await request(`http://127.0.0.1:${ports.c}/x`, { headers: { 'weft-caller': caller } })
      await res.body.text()
    }
    const text = await c.mesh.metrics()
    assert.equal(metricValue(text, 'http_server_request_duration_seconds_count', { source_service: 's19' }), 1)
    assert.equal(metricValue(text, 'http_server_request_duration_seconds_count', { source_service: 'unknown' }), 2)
    assert.ok(!text.includes('Not A Name') && !text.includes('etc'))
  } finally {
    await c.mesh.close()
  }
})

test('an unsampled caller trace (flags 00) stays unsampled on the next hop', async () => {
  const ports: Record<string, number> = {}
  const c = await hop('c', undefined, ports)
  const b = await hop('b', 'c', ports)
  try {
    const res = await request(`http://127.0.0.1:${ports.b}/x`, { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' } })
    assert.equal(await res.body.text(), 'b>leaf')
    assert.match(String(c.seen.at(-1)!.traceparent), /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/)
  } finally {
    await b.mesh.close()
    await c.mesh.close()
  }
})

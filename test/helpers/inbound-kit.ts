// Shared pieces of the framework adapter tests: a quiet serving mesh, upstreams, a gate that parks a
// handler, the weft-load check, one connection's GETs, and one cleanup list stopped after the file's tests.
import assert from 'node:assert/strict'
import { after } from 'node:test'
import { Client, fetch as undiciFetch } from 'undici'
import type { InboundOptions, Mesh } from '../../src/index.js'
import { metricValue, quietMesh } from './mesh.js'
import { startUpstream, type Upstream } from './upstream.js'

export const DURATION_COUNT = 'http_server_request_duration_seconds_count'
export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
export const SPAN_ID = '00f067aa0ba902b7'

// Everything a test starts is stopped here, newest first, so the process exits.
const cleanups: (() => Promise<unknown>)[] = []
after(async () => {
  for (const stop of cleanups.reverse()) await stop()
})

/** Stops `stop` after the file's tests. */
export function cleanup(stop: () => Promise<unknown>): void {
  cleanups.push(stop)
}

/**
 * A quiet mesh serving as 'checkout'. Event-loop shedding is off (a busy test machine blocks the loop
 * for 200 ms now and then, which would shed requests these tests expect served) unless `inbound` is
 * 'defaults', which passes no inbound options at all.
 */
export async function meshWith(config: unknown[] = [], inbound: InboundOptions | 'defaults' = {}): Promise<Mesh> {
  const mesh = await quietMesh(config, inbound === 'defaults' ? {} : { inbound: { shedding: false, ...inbound } })
  cleanup(() => mesh.close())
  return mesh
}

export async function upstream(name: string): Promise<Upstream> {
  const up = await startUpstream(name)
  cleanup(() => up.close())
  return up
}

/** A handler that parks until the test releases it; `reached` settles once it is inside. */
export function gate(): { reached: Promise<void>; enter: () => void; released: Promise<void>; release: () => void } {
  let enter!: () => void
  let release!: () => void
  const reached = new Promise<void>((r) => (enter = r))
  const released = new Promise<void>((r) => (release = r))
  return { reached, enter, released, release }
}

/**
 * GETs on one kept-alive connection (an undici Client), for what the mesh does per connection: a
 * global fetch opens a second connection when the first is not back in its pool yet.
 */
export function oneConnection(origin: string): (path: string) => Promise<{ status: number; headers: { get(name: string): string | null } }> {
  const client = new Client(origin)
  cleanup(() => client.close())
  return async (path) => {
    const res = await undiciFetch(origin + path, { dispatcher: client })
    await res.arrayBuffer()
    return res
  }
}

export function assertLoadHeader(res: { headers: { get(name: string): string | null } }, what: string): void {
  const v = res.headers.get('weft-load')
  assert.ok(v !== null, `${what}: weft-load header present`)
  assert.match(v, /^\d\.\d{2}$/, `${what}: weft-load has two decimals`)
  assert.ok(Number(v) >= 0 && Number(v) <= 1, `${what}: weft-load in 0..1`)
}

/** A request the server shed before any handler: 503, retry-after, the JSON error and its metric. */
export async function assertShed(res: Response, mesh: Mesh, what: string): Promise<void> {
  assert.equal(res.status, 503, `${what}: 503`)
  assert.equal(res.headers.get('weft-error-code'), 'WEFT_ERR_SERVER_OVERLOADED', `${what}: weft-error-code`)
  assert.equal(res.headers.get('retry-after'), '1', `${what}: retry-after`)
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'WEFT_ERR_SERVER_OVERLOADED', `${what}: JSON error code`)
  assert.equal(metricValue(await mesh.metrics(), DURATION_COUNT, { status_code: '503', error_code: 'WEFT_ERR_SERVER_OVERLOADED' }), 1, `${what}: counted once`)
}

// An endpoint's set of grpc-js channels (endpoint-channels.ts) over stand-in channels: the
// least-loaded pick, a new connection only when every one is at the cap, the per-endpoint maximum,
// the idle sweep that keeps the first, one connection closed alone, and close() closing them all.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Channel } from '@grpc/grpc-js'
import { EndpointChannels, mergeConnectionLimits, type ConnectionLimits, type EndpointConnection } from '../../src/grpc/endpoint-channels.js'

function fakes(limits: ConnectionLimits) {
  const made: { extra: boolean; closed: boolean; connects: number }[] = []
  const bound: unknown[] = []
  const set = new EndpointChannels((extra) => {
    const f = { extra, closed: false, connects: 0 }
    made.push(f)
    const channel = { close: () => void (f.closed = true), getConnectivityState: (c: boolean) => (c && f.connects++, 2) } as unknown as Channel
    return { channel, bind: (conn) => void bound.push(conn) }
  }, limits)
  const call = (): EndpointConnection => {
    const c = set.pick()
    c.active++
    c.started++
    return c
  }
  return { set, made, bound, call }
}

/** Polls until `ok` (the sweep runs on a timer); fails after 2 s. */
async function until(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(ok(), what)
}

test('calls fill the first connection to the cap, then a second opens; each call goes to the least loaded', () => {
  const { set, made, bound, call } = fakes({ streamsPerConnection: 2, maxPerEndpoint: 8, idleMs: 60_000 })
  const a = call()
  assert.equal(call(), a, 'under the cap, one connection')
  const b = call()
  assert.notEqual(b, a)
  assert.deepEqual(made.map((m) => m.extra), [false, true], 'the second is made as an extra channel')
  assert.equal(made[1]!.connects, 1, 'asked to connect at once')
  assert.deepEqual(bound, [a, b], 'each connection is bound to its credentials\' watch')
  assert.equal(call(), b, 'b is under the cap and least loaded')
  a.active--
  assert.equal(call(), a, 'a freed a slot: it is the least loaded')
  a.active -= 2
  b.active -= 2
  assert.equal(set.pick(), a, 'a tie goes to the oldest')
  set.close()
})

test('at maxPerEndpoint connections, calls share the least-loaded one instead of opening more', () => {
  const { set, made, call } = fakes({ streamsPerConnection: 1, maxPerEndpoint: 2, idleMs: 60_000 })
  const a = call()
  const b = call()
  assert.equal(call(), a)
  assert.equal(call(), b)
  assert.equal(made.length, 2)
  set.close()
})

test('the idle sweep closes connections beyond the first that carried no call for a whole period, never the first', async () => {
  const { set, made, call } = fakes({ streamsPerConnection: 1, maxPerEndpoint: 8, idleMs: 30 })
  const a = call()
  const b = call()
  const c = call()
  a.active--
  b.active--
  // c stays busy: kept. b idle: closed after one full period without calls. a (the first): kept.
  await until(() => set.conns.length === 2, 'the idle one closed')
  assert.deepEqual(set.conns, [a, c])
  assert.deepEqual(made.map((m) => m.closed), [false, true, false])
  c.active--
  await until(() => set.conns.length === 1, 'down to one')
  assert.deepEqual(set.conns, [a], 'down to the first')
  assert.equal(made[2]!.closed, true)
  set.close()
})

test('one connection closed alone leaves the others; the last one closed, the next call makes a new one; close() closes all', () => {
  const { set, made, call } = fakes({ streamsPerConnection: 1, maxPerEndpoint: 8, idleMs: 60_000 })
  const a = call()
  const b = call()
  a.close()
  assert.equal(a.closed, true)
  assert.equal(made[0]!.closed, true)
  assert.deepEqual(set.conns, [b])
  b.active--
  assert.equal(call(), b)
  b.close()
  const n = call()
  assert.notEqual(n, b)
  assert.equal(made.length, 3)
  set.close()
  assert.equal(set.closed, true)
  assert.deepEqual(set.conns, [])
  assert.equal(made.every((m) => m.closed), true)
})

test('setConnectionLimits checks its values', () => {
  const l: ConnectionLimits = { streamsPerConnection: 100, maxPerEndpoint: 32, idleMs: 60_000 }
  mergeConnectionLimits(l, { streamsPerConnection: 4 })
  assert.deepEqual(l, { streamsPerConnection: 4, maxPerEndpoint: 32, idleMs: 60_000 })
  for (const bad of [{ streamsPerConnection: 0 }, { maxPerEndpoint: 1.5 }, { idleMs: -1 }, { streamsPerConnection: '4' }]) {
    assert.throws(() => mergeConnectionLimits(l, bad as Partial<ConnectionLimits>), /setConnectionLimits/)
  }
  assert.deepEqual(l, { streamsPerConnection: 4, maxPerEndpoint: 32, idleMs: 60_000 })
})

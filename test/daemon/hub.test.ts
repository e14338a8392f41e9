import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { WatchMessage } from '../../src/control/protocol.js'
import { EmbeddedStore } from '../../src/daemon/embedded-store.js'
import { PushHub, type WatchSink } from '../../src/daemon/hub.js'
import type { InstanceRecord } from '../../src/daemon/store.js'
import { silentLogger } from '../../src/util/logger.js'

/** A stream whose buffer "fills" on demand: write() returns false while `full`, 'drain' on release. */
class FakeSink extends EventEmitter implements WatchSink {
  readonly lines: WatchMessage[] = []
  full = false
  ended = false
  write(chunk: string): boolean {
    for (const l of chunk.split('\n')) if (l) this.lines.push(JSON.parse(l) as WatchMessage)
    return !this.full
  }
  end(): void {
    this.ended = true
  }
  release(): void {
    this.full = false
    this.emit('drain')
  }
}

const rec = (id: string, port: number): InstanceRecord => ({
  id, service: 'payments', namespace: 'default', address: '127.0.0.1', port, protocol: 'http', labels: {}, tokenHash: '0'.repeat(64), joinHash: '1'.repeat(64), registeredAt: 'then',
})

async function setup(coalesceMs = 10) {
  const store = new EmbeddedStore(mkdtempSync(join(tmpdir(), 'weft-hub-')))
  await store.open()
  const sent: [string, number][] = []
  const hub = new PushHub(store, { coalesceMs, pingMs: 60_000, logger: silentLogger, onSent: (id, v) => sent.push([id, v]) })
  await hub.start()
  const settle = () => new Promise((r) => setTimeout(r, coalesceMs * 4))
  return { store, hub, settle, sent, close: async () => { hub.close(); await store.close() } }
}

test('backpressure: a backed-up watcher is skipped until drain, then gets one snapshot of the latest view', async () => {
  const { store, hub, settle, close } = await setup()
  try {
    const slow = new FakeSink()
    const fast = new FakeSink()
    hub.watch('slow', slow, undefined)
    hub.watch('fast', fast, undefined)
    assert.deepEqual([slow.lines.length, fast.lines.length], [1, 1], 'a snapshot each')
    slow.full = true
    await store.attachInstance(rec('a', 1))
    await settle()
    // The delta went into slow's buffer (write returned false): it is now skipped.
    await store.attachInstance(rec('b', 2))
    await settle()
    await store.attachInstance(rec('c', 3))
    await settle()
    assert.equal(fast.lines.length, 4)
    assert.equal(slow.lines.length, 2, 'nothing written while backed up')
    slow.release()
    assert.equal(slow.lines.length, 3)
    const last = slow.lines[2]!
    assert.equal(last.type, 'snapshot')
    assert.equal(last.version, hub.version)
    assert.deepEqual(last.type === 'snapshot' && last.endpoints['default/payments']!.map((e) => e.instance), ['a', 'b', 'c'])
    // Drained with nothing missed: no extra snapshot.
    slow.full = true
    await store.attachInstance(rec('d', 4))
    await settle()
    slow.release()
    assert.equal(slow.lines.at(-1)!.type, 'endpoints')
  } finally {
    await close()
  }
})

test('a change nobody can see makes no version; a watcher with a stale base gets a snapshot, not a delta', async () => {
  const { store, hub, settle, close, sent } = await setup()
  try {
    const w = new FakeSink()
    const a = rec('a', 1)
    await store.attachInstance(a)
    await settle()
    hub.watch('w', w, undefined)
    const v = hub.version
    // Re-registered with a new token but the same endpoint: a store change, not a view change.
    await store.attachInstance({ ...a, tokenHash: '2'.repeat(64) })
    await settle()
    assert.equal(hub.version, v)
    assert.equal(w.lines.length, 1)
    // A watcher that says it holds an older version than the base gets a snapshot.
    const old = new FakeSink()
    hub.watch('old', old, v - 1)
    assert.equal(old.lines[0]!.type, 'snapshot')
    const current = new FakeSink()
    hub.watch('cur', current, v)
    assert.equal(current.lines.length, 0)
    await store.attachInstance(rec('b', 2))
    await settle()
    assert.deepEqual(current.lines.map((l) => l.type), ['endpoints'])
    assert.ok(sent.some(([id, ver]) => id === 'cur' && ver === hub.version))
  } finally {
    await close()
  }
})

test('a stream opened while changes are pending gets its first snapshot when the window closes, holding them', async () => {
  const { store, hub, close } = await setup(100)
  try {
    await store.attachInstance(rec('self', 7))
    const w = new FakeSink()
    hub.watch('self', w, undefined)
    assert.equal(w.lines.length, 0, 'waits for the window')
    await new Promise((r) => setTimeout(r, 400))
    assert.equal(w.lines.length, 1)
    const snap = w.lines[0]!
    assert.ok(snap.type === 'snapshot' && snap.endpoints['default/payments']?.[0]?.instance === 'self')
  } finally {
    await close()
  }
})

test('endStreams and close end the sinks', async () => {
  const { hub, close } = await setup()
  const a = new FakeSink()
  const b = new FakeSink()
  hub.watch('a', a, undefined)
  hub.watch('b', b, undefined)
  hub.endStreams('a')
  assert.deepEqual([a.ended, b.ended], [true, false])
  assert.equal(hub.streams('a'), 0)
  await close()
  assert.equal(b.ended, true)
})

test('start: a deletion (or a newer policy) that lands while the hub loads is not undone by the older read', async () => {
  class RacyStore extends EmbeddedStore {
    race = false
    override async readPolicy() {
      const p = await super.readPolicy()
      if (this.race) await this.writePolicy([{ kind: 'Service', namespace: 'default', name: 'late', value: { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'late' } } }], { action: 'apply', summary: 'late' }, p.version)
      return p
    }
    override async listInstances() {
      const list = await super.listInstances()
      if (this.race) {
        this.race = false
        await this.deleteInstance('gone')
      }
      return list
    }
  }
  const store = new RacyStore(mkdtempSync(join(tmpdir(), 'weft-hub-')))
  await store.open()
  await store.attachInstance(rec('gone', 1))
  await store.attachInstance(rec('stays', 2))
  store.race = true
  const hub = new PushHub(store, { coalesceMs: 10, pingMs: 60_000, logger: silentLogger })
  try {
    await hub.start()
    assert.deepEqual(hub.endpoints()['default/payments']!.map((e) => e.instance), ['stays'])
    assert.deepEqual(hub.snapshot().resources.map((r) => (r as { metadata: { name: string } }).metadata.name), ['late'])
    const w = new FakeSink()
    hub.watch('w', w, undefined)
    await new Promise((r) => setTimeout(r, 50))
    assert.deepEqual(w.lines.map((l) => l.type), ['snapshot'], 'the start view is the current one: nothing pending to push')
  } finally {
    hub.close()
    await store.close()
  }
})

test('streams are found by instance id: two streams of one instance, heard and ended together, others untouched', async () => {
  const { hub, close } = await setup()
  try {
    const a1 = new FakeSink()
    const a2 = new FakeSink()
    const b = new FakeSink()
    hub.watch('a', a1, undefined)
    const second = hub.watch('a', a2, undefined)
    hub.watch('b', b, undefined)
    assert.equal(hub.streams('a'), 2)
    assert.equal(hub.streams('b'), 1)
    assert.equal(hub.streams('nobody'), 0)
    hub.heard('nobody') // an instance with no stream: nothing to do, no error
    second.remove()
    assert.equal(hub.streams('a'), 1, 'a removed stream is no longer counted')
    hub.watch('a', a2, undefined)
    hub.endStreams('a')
    assert.equal(hub.streams('a'), 0)
    assert.ok(a1.ended && a2.ended, 'both of its streams ended')
    assert.equal(b.ended, false, 'the other instance keeps its stream')
    assert.equal(hub.streams('b'), 1)
  } finally {
    await close()
  }
})

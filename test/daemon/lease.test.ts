// test: serial (short leases expire instances on time; scripts/run-tests.mjs runs it alone)
// The lease (docs/design/control-plan.md, "Leases and registry"): an instance outlives its last
// stream by one TTL whatever the store does — a failed attach counts no stream, a failed detach is
// retried and falls back to deleting the record when the lease would have ended — and the stream
// alone is not enough: an instance that sends no heartbeat for a whole lease (a frozen process keeps
// its TCP stream open) loses its stream and its lease, and so does a stream backed up that long.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { EmbeddedStore } from '../../src/daemon/embedded-store.js'
import type { InstanceRecord } from '../../src/daemon/store.js'
import { applyPolicy, call, eventually, openWatch, register, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A store whose attach/detach fail on demand (an etcd deadline, a full disk). */
class FlakyStore extends EmbeddedStore {
  failAttach = 0
  failDetach = 0
  override async attachInstance(rec: InstanceRecord): Promise<void> {
    if (this.failAttach > 0) {
      this.failAttach--
      throw new Error('simulated: etcd request deadline exceeded')
    }
    return super.attachInstance(rec)
  }
  override async detachInstance(id: string, ttl: number): Promise<void> {
    if (this.failDetach > 0) {
      this.failDetach--
      throw new Error('simulated: etcd request deadline exceeded')
    }
    return super.detachInstance(id, ttl)
  }
}

async function flaky(leaseTtlMs: number): Promise<{ t: TestDaemon; store: FlakyStore; warnings: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-lease-'))
  const store = new FlakyStore(dir, { restoreTtlMs: leaseTtlMs })
  const warnings: string[] = []
  const t = await startTestDaemon({ dataDir: dir, store, leaseTtlMs, logger: { info() {}, error() {}, warn: (m) => warnings.push(m) } })
  return { t, store, warnings }
}

const ids = async (t: TestDaemon) => ((await call(t.url, 'GET', '/v1/instances', t.adminToken)).body.instances as { id: string }[]).map((i) => i.id)

test('a watch whose attach fails (500) counts no stream: after the next stream closes the instance expires in its TTL', async () => {
  const { t, store } = await flaky(300)
  try {
    const inst = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    store.failAttach = 1
    const refused = await openWatch(t.url, inst.id, inst.token)
    assert.equal(refused.status, 500)
    refused.close()
    const w = await openWatch(t.url, inst.id, inst.token)
    assert.equal(w.status, 200)
    await w.next()
    w.close() // the instance process dies
    await eventually(async () => (await ids(t)).length === 0, 1500, 'instance expired within 5x TTL')
  } finally {
    await t.daemon.close()
  }
})

test('a failed attach alone (the only watch) still lets the registration expire', async () => {
  const { t, store } = await flaky(300)
  try {
    const inst = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    store.failAttach = 1
    assert.equal((await openWatch(t.url, inst.id, inst.token)).status, 500)
    await eventually(async () => (await ids(t)).length === 0, 1500, 'registration expired')
  } finally {
    await t.daemon.close()
  }
})

test('a failed detach is retried: the instance still expires after its TTL', async () => {
  const { t, store, warnings } = await flaky(300)
  try {
    const inst = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    const w = await openWatch(t.url, inst.id, inst.token)
    await w.next()
    store.failDetach = 1
    w.close()
    await eventually(async () => (await ids(t)).length === 0, 1500, 'instance expired')
    assert.ok(warnings.some((m) => /could not start its expiry .*retrying/.test(m)), warnings.join('\n'))
  } finally {
    await t.daemon.close()
  }
})

test('a detach that keeps failing: the record is deleted when the lease would have ended', async () => {
  const { t, store, warnings } = await flaky(400)
  try {
    const inst = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    const w = await openWatch(t.url, inst.id, inst.token)
    await w.next()
    store.failDetach = 1_000
    const closedAt = Date.now()
    w.close()
    await eventually(async () => (await ids(t)).length === 0, 2000, 'instance deleted')
    const took = Date.now() - closedAt
    assert.ok(took >= 350, `deleted after ${took} ms: not before the lease ended`)
    assert.ok(warnings.some((m) => /ended while the store could not start its expiry: deleted it/.test(m)), warnings.join('\n'))
  } finally {
    await t.daemon.close()
  }
})

test('a frozen instance (SIGSTOP, its TCP stream still open) is gone from the endpoints within ~2 TTL; lastSeen is when it was last heard', async () => {
  const t = await startTestDaemon({ leaseTtlMs: 600 })
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, '../fixtures/heartbeat-instance.ts')], {
    env: { ...process.env, URL: t.url, JOIN: t.joinToken, PORT: '8081' }, stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    const id = await new Promise<string>((ok, fail) => {
      child.once('exit', () => fail(new Error('instance exited')))
      child.stdout!.on('data', (d: Buffer) => /watching (\S+)/.test(String(d)) && ok(/watching (\S+)/.exec(String(d))![1]!))
    })
    // Alive and heartbeating: held well past the TTL.
    await sleep(1500)
    const st = (await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances.find((i: { id: string }) => i.id === id)
    assert.equal(st?.connected, true)
    assert.ok(Date.now() - Date.parse(st.lastSeen) < 600, `lastSeen ${st.lastSeen} is a heartbeat within the lease`)
    const endpoints = async () => (await call(t.url, 'GET', '/v1/endpoints', t.adminToken)).body.endpoints
    assert.equal((await endpoints())['default/payments']?.length, 1)
    child.kill('SIGSTOP')
    const frozenAt = Date.now()
    await eventually(async () => Object.keys(await endpoints()).length === 0, 3000, 'frozen instance removed')
    const took = Date.now() - frozenAt
    assert.ok(took < 1500, `removed ${took} ms after it froze`)
    assert.deepEqual(await ids(t), [], 'its registration is gone too (the lease ran out while it was silent)')
  } finally {
    child.kill('SIGKILL')
    await t.daemon.close()
  }
})

test('a client that never heartbeats (an old one) has its stream ended after one lease; lastSeen stays at its last call', async () => {
  const t = await startTestDaemon({ leaseTtlMs: 400 })
  try {
    const inst = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    const w = await openWatch(t.url, inst.id, inst.token, undefined, { heartbeat: false })
    await w.next()
    const lastSeen = (await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances[0].lastSeen
    await sleep(250)
    assert.equal((await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances[0].lastSeen, lastSeen, 'not "now" while connected')
    await w.waitEnd(1500)
    await eventually(async () => (await ids(t)).length === 0, 1000, 'registration removed')
    // A heartbeating watcher of the same daemon is untouched.
    const b = await register(t, { service: 'payments', address: '127.0.0.1', port: 8082 })
    const wb = await openWatch(t.url, b.id, b.token)
    await wb.next()
    await sleep(1300)
    assert.equal(wb.ended, false)
    assert.deepEqual(await ids(t), [b.id])
    wb.close()
  } finally {
    await t.daemon.close()
  }
})

test('a stream backed up for a whole lease is dropped, while its instance (still heartbeating) keeps its registration', async () => {
  const warnings: string[] = []
  const t = await startTestDaemon({ leaseTtlMs: 1000, coalesceMs: 5, logger: { info() {}, error() {}, warn: (m) => warnings.push(m) } })
  try {
    const inst = await register(t, { service: 'payments', address: '127.0.0.1', port: 8081 })
    const sock = connect(Number(new URL(t.url).port), '127.0.0.1')
    await new Promise((r) => sock.once('connect', r))
    let closed = false
    sock.on('close', () => (closed = true))
    sock.on('error', () => {})
    sock.write(`GET /v1/instances/${inst.id}/watch HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${inst.token}\r\n\r\n`)
    await eventually(async () => (await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances[0]?.connected, 3000)
    sock.pause() // it stops reading: the kernel buffers fill, then the daemon's
    const beats = setInterval(() => void call(t.url, 'POST', `/v1/instances/${inst.id}/heartbeat`, inst.token, {}).catch(() => {}), 200)
    try {
      const pad = 'x'.repeat(200_000)
      for (let i = 0; i < 40 && !closed; i++) {
        await applyPolicy(t, `apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments, annotations: { pad: "${i}${pad}" } }\nspec: { protocol: http }\n`)
      }
      await eventually(async () => closed || (await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances[0]?.connected === false, 4000, 'backed-up stream dropped')
      assert.ok(warnings.some((m) => /has been backed up for \d+ ms \(lease 1000 ms\): dropping it/.test(m)), warnings.join('\n'))
      assert.deepEqual(await ids(t), [inst.id], 'heard from all along: the registration stays (its lease runs from now)')
    } finally {
      clearInterval(beats)
      sock.destroy()
    }
  } finally {
    await t.daemon.close()
  }
})

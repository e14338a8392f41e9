// Several daemons on one real etcd: the first start's admin token is made once (create-only in
// etcd) even when daemons start together, and `weft status` asked of one daemon shows an instance
// whose stream is on another as ELSEWHERE, naming that daemon.
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createEtcdStore } from '../../adapters/etcd/etcd-store.js'
import { startDaemon, type Daemon } from '../../src/daemon/index.js'
import type { Logger } from '../../src/util/logger.js'
import { call, eventually, openWatch } from '../helpers/daemon.js'
import { startEtcd } from '../helpers/etcd.js'

function logger(lines: string[]): Logger {
  return { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) }
}

test('two daemons starting at once on a fresh etcd: one admin token, valid on both; the other says where it is', async (t) => {
  const etcd = await startEtcd({ maxLifetimeMs: 120_000 })
  t.after(() => etcd.stop())
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'weft-etcd-race-')))
  const printed: string[][] = [[], []]
  const logs: string[][] = [[], []]
  const start = (i: number) => startDaemon({
    listen: '127.0.0.1:0', dataDir: dirs[i]!, logger: logger(logs[i]!), print: (l) => printed[i]!.push(l),
    store: createEtcdStore({ endpoints: [etcd.endpoint], leaseTtlMs: 3000 }),
  })
  const daemons: Daemon[] = await Promise.all([start(0), start(1)])
  t.after(() => Promise.all(daemons.map((d) => d.close())))
  const winner = dirs.findIndex((d) => existsSync(join(d, 'admin.token')))
  assert.ok(winner >= 0, 'one daemon wrote the admin token')
  const loser = 1 - winner
  assert.equal(existsSync(join(dirs[loser]!, 'admin.token')), false, 'the other removed the token files it wrote')
  assert.equal(existsSync(join(dirs[loser]!, 'join.token')), false)
  assert.equal(printed[loser]!.length, 0, 'and printed no token')
  assert.equal(printed[winner]!.length, 2)
  assert.match(logs[loser]!.join('\n'), /admin token was made by another daemon sharing it .*not in .*admin\.token/)
  const admin = readFileSync(join(dirs[winner]!, 'admin.token'), 'utf8').trim()
  const joinToken = readFileSync(join(dirs[winner]!, 'join.token'), 'utf8').trim()
  for (const d of daemons) {
    assert.equal((await call(d.url, 'GET', '/v1/policy', admin)).status, 200)
    assert.equal((await call(d.url, 'POST', '/v1/register', joinToken, { service: 'payments' })).status, 201)
  }
  // Restarted, the winner keeps its token (the hash in etcd is the one it made).
  await daemons[winner]!.close()
  daemons[winner] = await start(winner)
  assert.equal((await call(daemons[winner]!.url, 'GET', '/v1/policy', admin)).status, 200)
  assert.equal(printed[winner]!.length, 2, 'nothing printed again')
})

test('status of an instance watching another daemon: ELSEWHERE with that daemon\'s URL, DISCONNECTED once its stream closes', async (t) => {
  const etcd = await startEtcd({ maxLifetimeMs: 120_000 })
  t.after(() => etcd.stop())
  const mk = (dataDir: string) => startDaemon({ listen: '127.0.0.1:0', dataDir, logger: logger([]), print: () => {}, coalesceMs: 5, store: createEtcdStore({ endpoints: [etcd.endpoint], leaseTtlMs: 3000 }), leaseTtlMs: 3000 })
  const dirA = mkdtempSync(join(tmpdir(), 'weft-etcd-a-'))
  const A = await mk(dirA)
  const B = await mk(mkdtempSync(join(tmpdir(), 'weft-etcd-b-')))
  t.after(async () => {
    await A.close()
    await B.close()
  })
  const admin = readFileSync(join(dirA, 'admin.token'), 'utf8').trim()
  const joinTok = readFileSync(join(dirA, 'join.token'), 'utf8').trim()
  const reg = (await call(B.url, 'POST', '/v1/register', joinTok, { service: 'payments', address: '127.0.0.1', port: 8081 })).body
  const w = await openWatch(B.url, reg.id, reg.token)
  try {
    const snap = await w.next()
    await call(B.url, 'POST', `/v1/instances/${reg.id}/ack`, reg.token, { version: snap.version })
    const onA = await eventually(async () => {
      const s = (await call(A.url, 'GET', '/v1/status', admin)).body.instances[0]
      return s?.state === 'ELSEWHERE' && s
    }, 5000, 'ELSEWHERE on daemon A')
    assert.equal(onA.daemon, B.url)
    assert.equal(onA.connected, false)
    const onB = (await call(B.url, 'GET', '/v1/status', admin)).body.instances[0]
    assert.equal(onB.state, 'SYNCED')
    assert.equal(onB.daemon, undefined)
  } finally {
    w.close()
  }
  await eventually(async () => (await call(A.url, 'GET', '/v1/status', admin)).body.instances[0]?.state === 'DISCONNECTED', 5000, 'DISCONNECTED on A after the stream closed')
})

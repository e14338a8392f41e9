// Two daemons over one real etcd: daemon A (a `weft daemon --etcd` process) is SIGKILLed while
// traffic flows; its instances fail over to daemon B (listed second in their control URLs) and
// nothing is lost: 0 failed requests, every registration kept, the policy unchanged, and a policy
// applied through B reaches everyone.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEtcdStore } from '../../adapters/etcd/etcd-store.js'
import { startDaemon } from '../../src/daemon/index.js'
import { silentLogger } from '../../src/util/logger.js'
import { startEtcd } from '../helpers/etcd.js'
import { applyPolicy, call, eventually, type TestDaemon } from '../helpers/daemon.js'
import { endpointsOf, paymentsAndCheckout, trafficLoop, waitEndpoints, waitSynced } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const PAYMENTS = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: 2s, loadBalancer: { policy: round-robin } }
`

test('two daemons over one etcd: one is killed, its instances fail over to the other, nothing is lost', async (t) => {
  const etcd = await startEtcd()
  t.after(() => etcd.stop())

  const dirA = mkdtempSync(join(tmpdir(), 'weft-etcd-a-'))
  const a = spawn(process.execPath, ['--import', 'tsx', MAIN, 'daemon', '--etcd', etcd.endpoint, '--data-dir', dirA, '--listen', '127.0.0.1:0', '--lease-ttl', '3s'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderrA = ''
  a.stderr.setEncoding('utf8').on('data', (s: string) => (stderrA += s))
  t.after(() => void a.kill('SIGKILL'))
  const urlA = await eventually(async () => {
    if (a.exitCode !== null) throw new Error(`daemon A exited ${a.exitCode}: ${stderrA}`)
    try {
      const f = JSON.parse(readFileSync(join(dirA, 'daemon.json'), 'utf8')) as { url: string; pid: number }
      return f.pid === a.pid ? f.url : undefined
    } catch {
      return undefined
    }
  }, 30_000, 'daemon A to start')
  const adminToken = readFileSync(join(dirA, 'admin.token'), 'utf8').trim()
  const joinToken = readFileSync(join(dirA, 'join.token'), 'utf8').trim()

  const dirB = mkdtempSync(join(tmpdir(), 'weft-etcd-b-'))
  const daemonB = await startDaemon({ listen: '127.0.0.1:0', dataDir: dirB, leaseTtlMs: 3000, logger: silentLogger, print: () => {}, store: createEtcdStore({ endpoints: [etcd.endpoint], leaseTtlMs: 3000 }) })
  t.after(() => daemonB.close())
  const A = { url: urlA, adminToken, joinToken } as TestDaemon
  const B = { url: daemonB.url, adminToken, joinToken } as TestDaemon

  assert.equal((await applyPolicy(A, PAYMENTS)).status, 200)
  // Every instance lists both daemons; all start on A (the first).
  const both = { url: [urlA, daemonB.url], joinToken }
  const { checkout, payments: { p1, p2 } } = await paymentsAndCheckout(t, both, { p1: {}, p2: {} })
  const ids = [checkout.instanceId!, p1.mesh.instanceId!, p2.mesh.instanceId!]
  await waitEndpoints(checkout, 'payments', 2, 10_000)
  // B sees A's registrations through etcd.
  await eventually(async () => (await call(B.url, 'GET', '/v1/instances', adminToken)).body.instances.length === 3, 10_000, 'B lists the three instances')
  const policyBefore = (await call(B.url, 'GET', '/v1/policy', adminToken)).body.resources

  const traffic = trafficLoop(t, checkout, 'payments')
  a.kill('SIGKILL')
  await waitSynced(B, ids, 20_000)
  // Past A's lease TTL: the registrations now live on B's lease and none expired.
  await new Promise((r) => setTimeout(r, 3500))
  assert.equal((await call(B.url, 'GET', '/v1/instances', adminToken)).body.instances.length, 3, 'every registration survived A\'s lease')
  assert.deepEqual(endpointsOf(checkout, 'payments'), [`127.0.0.1:${p1.port}`, `127.0.0.1:${p2.port}`].sort())
  assert.deepEqual((await call(B.url, 'GET', '/v1/policy', adminToken)).body.resources, policyBefore, 'policy unchanged')

  const applied = await applyPolicy(B, PAYMENTS.replace('2s', '3s'))
  assert.equal(applied.status, 200)
  await eventually(async () => checkout.snapshot?.lookup('payments')?.settings.timeoutMs === 3000, 10_000, 'a policy applied through B reaches the instances')
  const { ok, failed } = await traffic.stop()
  assert.ok(ok > 50, `traffic flowed (${ok})`)
  assert.deepEqual(failed, [], 'no request failed across the failover')
  assert.equal(metricValue(await checkout.metrics(), 'weft_control_connected'), 1)
})

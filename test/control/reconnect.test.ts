// test: serial (200 clients reconnecting, their spread measured; scripts/run-tests.mjs runs it alone)
// 200 watchers (ControlClients in this process, each with its own connections) reconnect after a
// daemon restart spread out by full-jitter backoff, not in one burst, and all converge.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ControlClient } from '../../src/control/client.js'
import { silentLogger } from '../../src/util/logger.js'
import { applyPolicy, startTestDaemon } from '../helpers/daemon.js'
import { statusOf, waitSynced } from '../helpers/control-kit.js'

const N = 200

test(`${N} instances reconnect after a daemon restart with jitter, not in one burst, and all converge`, async (t) => {
  const d = await startTestDaemon({ leaseTtlMs: 5000 })
  await applyPolicy(d, 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\n')
  const connects: number[] = []
  const versions = new Map<string, number>()
  const clients = Array.from({ length: N }, (_, i) => new ControlClient({
    urls: [d.url],
    token: d.joinToken,
    registration: { id: `w-${i}`, service: 'checkout', address: '127.0.0.1', port: 20_000 + i, protocol: 'http' },
    logger: silentLogger,
    apply: async (view) => void versions.set(`w-${i}`, view.version),
    onConnected: (up) => void (up && connects.push(performance.now())),
  }))
  t.after(() => Promise.all(clients.map((c) => c.close())))
  for (const c of clients) c.start()
  await waitSynced(d, clients.map((c) => c.id), 20_000)

  connects.length = 0
  await d.daemon.close()
  const downAt = performance.now()
  await new Promise((r) => setTimeout(r, 500))
  const back = await startTestDaemon({ dataDir: d.dataDir, listen: `127.0.0.1:${d.daemon.port}`, leaseTtlMs: 5000 })
  t.after(() => back.daemon.close())
  const version = await waitSynced(back, clients.map((c) => c.id), 20_000)
  assert.equal(connects.length, N, 'every watcher reconnected once')
  const st = await statusOf(back)
  assert.equal(st.instances.filter((i) => i.state === 'SYNCED').length, N)
  assert.ok([...versions.values()].every((v) => v === version), 'every watcher applied the current version')

  // Spread: the reconnections after the restart are not one burst. With full jitter they fall
  // across the backoff window; no 20 ms slice holds more than a quarter of them.
  const times = connects.map((c) => c - downAt).sort((a, b) => a - b)
  let worst = 0
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! > 20) j++
    worst = Math.max(worst, i - j + 1)
  }
  t.diagnostic(`reconnections: busiest 20 ms held ${worst} of ${N}; spread ${times[0]!.toFixed(0)}–${times[times.length - 1]!.toFixed(0)} ms after the daemon stopped`)
  assert.ok(worst <= N / 4, `at most ${N / 4} reconnections in any 20 ms (saw ${worst}; spread ${times[0]!.toFixed(0)}–${times[times.length - 1]!.toFixed(0)} ms after the daemon stopped)`)
})

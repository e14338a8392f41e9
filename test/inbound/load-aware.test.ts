// test: serial (a CPU-busy instance must get a clearly smaller share; scripts/run-tests.mjs runs it alone)
import assert from 'node:assert/strict'
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { quietMesh, service } from '../helpers/mesh.js'

const FIXTURE = fileURLToPath(new URL('../fixtures/busy-instance.ts', import.meta.url))

function start(name: string, busy: boolean): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(FIXTURE, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, NAME: name, BUSY: busy ? '1' : '0' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, port: (m as { port: number }).port }))
    child.once('exit', (code) => reject(new Error(`${name} exited early (${code})`)))
  })
}

test('an instance whose event loop is busy gets a clearly smaller share: its reported load and latency steer P2C away', async (t) => {
  // Separate processes: a busy loop blocks its whole process, so each instance needs its own.
  const instances = await Promise.all([start('calm-1', false), start('calm-2', false), start('busy', true)])
  const mesh = await quietMesh([service('payments', { endpoints: instances.map((i) => ({ address: `127.0.0.1:${i.port}` })) })])
  try {
    const counts: Record<string, number> = { 'calm-1': 0, 'calm-2': 0, busy: 0 }
    const total = 900
    let sent = 0
    const worker = async () => {
      while (sent < total) {
        sent++
        const res = await mesh.request('http://payments/charge')
        counts[await res.body.text()]!++
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
    const share = counts.busy! / total
    // A fair share is 1/3. The busy instance answers late (its loop is blocked 70 % of the time)
    // and reports a high weft-load, so it should get far less. The bound is loose on purpose.
    t.diagnostic(`shares: ${JSON.stringify(counts)}`)
    assert.ok(share < 0.2, `busy instance share ${(share * 100).toFixed(1)}% (counts ${JSON.stringify(counts)})`)
    assert.ok(counts['calm-1']! > counts.busy! * 2 && counts['calm-2']! > counts.busy! * 2, JSON.stringify(counts))
    const busyEndpoint = mesh.snapshot!.lookup('payments')!.runtime.endpoints.list().find((e) => e.port === instances[2]!.port)!
    assert.ok(busyEndpoint.reportedLoad > 0.3, `the busy instance reported load ${busyEndpoint.reportedLoad}`)
  } finally {
    await mesh.close()
    for (const i of instances) i.child.kill()
  }
})

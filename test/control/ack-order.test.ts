// ACKs reach the daemon in the order the instance sends them: the daemon keeps the last it gets, so
// the resume ACK of a new stream (the version the instance runs) must not land after the ACK of the
// view the stream then delivered. When it did, after an etcd failover the instance stayed STALE at
// the other daemon until the next change (test/control/etcd-failover.test.ts, intermittently).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AckSender } from '../../src/control/ack-sender.js'
import { silentLogger } from '../../src/util/logger.js'

test('a resume ACK still in flight is not overtaken: the view\'s ACK goes after it, so the daemon ends with the view\'s version', async () => {
  const landed: unknown[] = []
  const gates: (() => void)[] = []
  // Each POST lands only when the test opens its gate.
  const post = (_resource: string, body: unknown) => new Promise<unknown>((resolve) => gates.push(() => resolve(landed.push(body))))
  const s = new AckSender({ post, canBeat: () => true, logger: silentLogger, onBeatFailed: () => {} })
  s.resume(21)
  for (let i = 0; i < 20 && gates.length < 1; i++) await new Promise((r) => setImmediate(r))
  assert.equal(gates.length, 1, 'the resume ACK is under way')
  // The stream's first view arrives while it is: its ACK waits for the resume's to land.
  const viewAck = s.send({ version: 18 })
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
  assert.equal(gates.length, 1, 'one POST at a time')
  gates[0]!()
  for (let i = 0; i < 20 && gates.length < 2; i++) await new Promise((r) => setImmediate(r))
  assert.equal(gates.length, 2, 'the view\'s ACK is posted once the resume\'s has landed')
  gates[1]!()
  await viewAck
  assert.deepEqual(landed, [{ version: 21 }, { version: 18 }])
})

test('an ACK replaced before it was posted is not posted: only the newest goes', async () => {
  const landed: unknown[] = []
  const s = new AckSender({ post: async (_r, body) => void landed.push(body), canBeat: () => true, logger: silentLogger, onBeatFailed: () => {} })
  s.resume(21)
  await s.send({ version: 18 })
  assert.deepEqual(landed, [{ version: 18 }])
})

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DeadlineWatch, type Watched } from '../../src/resilience/deadline-watch.js'

/** A call-shaped object that records when it expired. */
function watched(deadlineInMs: number): Watched & { firedAt: number | undefined; settled: boolean } {
  const w = {
    deadline: performance.now() + deadlineInMs,
    settled: false,
    firedAt: undefined as number | undefined,
    get deadlineSettled() {
      return w.settled
    },
    expire() {
      w.firedAt = performance.now()
    },
  }
  return w
}

const until = (cond: () => boolean): Promise<void> =>
  new Promise((resolve) => {
    const check = () => (cond() ? resolve() : setTimeout(check, 2))
    check()
  })

test('a call whose deadline passes is expired, never before its deadline, through the coarse tick', async () => {
  const watch = new DeadlineWatch(10)
  const far = watched(60) // beyond two ticks: goes on the list, gets a precise timer later
  const near = watched(5) // within two ticks: a precise timer at once
  watch.watch(far, performance.now())
  watch.watch(near, performance.now())
  assert.equal(watch.size, 1, 'only the far call waits on the list')
  await until(() => far.firedAt !== undefined && near.firedAt !== undefined)
  // Node's timers may run early against performance.now(); the watch re-arms instead of expiring.
  assert.ok(far.firedAt! >= far.deadline, `far fired ${(far.deadline - far.firedAt!).toFixed(2)}ms early`)
  assert.ok(near.firedAt! >= near.deadline, `near fired ${(near.deadline - near.firedAt!).toFixed(2)}ms early`)
  assert.equal(watch.size, 0)
})

test('a call that is over before its deadline is dropped at the next tick and never expired', async () => {
  const watch = new DeadlineWatch(5)
  const calls = Array.from({ length: 100 }, () => watched(40))
  for (const c of calls) watch.watch(c, performance.now())
  assert.equal(watch.size, 100)
  for (const c of calls.slice(0, 99)) c.settled = true
  await until(() => watch.size <= 1)
  assert.equal(watch.size, 1, 'the settled calls are no longer held')
  const last = calls[99]!
  await until(() => last.firedAt !== undefined)
  assert.ok(calls.slice(0, 99).every((c) => c.firedAt === undefined), 'no settled call expired')
  // A settled call whose precise timer was already armed is not expired either.
  const armed = watched(3)
  watch.watch(armed, performance.now())
  armed.settled = true
  await new Promise((r) => setTimeout(r, 15))
  assert.equal(armed.firedAt, undefined)
})

test('a call unwatched when its deadline settles leaves the list at once, so finished calls are not held until the tick', async () => {
  const watch = new DeadlineWatch(10)
  const calls = Array.from({ length: 3 }, () => watched(60))
  for (const c of calls) watch.watch(c, performance.now())
  assert.equal(watch.size, 3)
  // Unlinking from the middle, the tail and the head keeps the list whole.
  for (const i of [1, 2, 0]) {
    calls[i]!.settled = true
    watch.unwatch(calls[i]!)
  }
  assert.equal(watch.size, 0, 'nothing is held once every call settled')
  watch.unwatch(calls[0]!) // a second unwatch is a no-op
  assert.equal(watch.size, 0)
  const late = watched(25)
  watch.watch(late, performance.now())
  assert.equal(watch.size, 1, 'the list is usable after emptying')
  await until(() => late.firedAt !== undefined)
  assert.ok(calls.every((c) => c.firedAt === undefined), 'no unwatched call expired')
  assert.equal(watch.size, 0)
})

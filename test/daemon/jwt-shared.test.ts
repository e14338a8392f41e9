// The JWT-SVID key set on a store daemons share, with an in-memory shared document whose watch can
// be held back per daemon: a rotate through one daemon is a compare-and-set the others follow from
// the watch; GET /v1/jwks reads the document first, so it publishes a new key even before the
// watch delivers it; every daemon computes the activation from the stored rotatedAt, so they switch
// signing keys at the same moment (one fake clock here); of two concurrent changes one gets 409.
// (test/etcd/shared-jwt.test.ts: etcd.)
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { decodeProtectedHeader } from 'jose'
import { ACTIVATE_DELAY_MS } from '../../src/daemon/jwt-keys.js'
import { JwtService } from '../../src/daemon/jwt-service.js'
import type { HttpError } from '../../src/daemon/http-error.js'
import type { SharedDoc, SharedDocVersion } from '../../src/daemon/store.js'
import { silentLogger } from '../../src/util/logger.js'
import { eventually } from '../helpers/daemon.js'
import { FakeClock } from '../identity/jwt/kit.js'

const CHECKOUT = 'spiffe://weft.local/ns/default/sa/checkout'

/** One document; `reader()` is one daemon's handle on it, whose watch delivers only while not held. */
class MemoryDoc {
  private cur: SharedDocVersion | undefined
  private revision = 0
  private readonly handles: { listeners: ((d: SharedDocVersion) => void)[]; held: boolean; queue: SharedDocVersion[] }[] = []

  reader(): SharedDoc & { hold(): void; release(): void } {
    const h = { listeners: [] as ((d: SharedDocVersion) => void)[], held: false, queue: [] as SharedDocVersion[] }
    this.handles.push(h)
    return {
      get: async () => this.cur,
      createIfAbsent: async (value) => (this.cur ? { ...this.cur, created: false } : { ...this.put(value), created: true }),
      compareAndSet: async (value, revision) => (this.cur?.revision === revision ? this.put(value).revision : undefined),
      watch: async (_after, listener) => void h.listeners.push(listener),
      hold: () => void (h.held = true),
      release: () => {
        h.held = false
        for (const d of h.queue.splice(0)) for (const l of h.listeners) l(d)
      },
    }
  }

  private put(value: string): SharedDocVersion {
    const doc = (this.cur = { value, revision: ++this.revision })
    for (const h of this.handles) {
      if (h.held) h.queue.push(doc)
      else for (const l of h.listeners) l(doc)
    }
    return doc
  }
}

function dirs(t: TestContext, n: number): string[] {
  const out = Array.from({ length: n }, () => mkdtempSync(join(tmpdir(), 'weft-jwt-shared-')))
  t.after(() => out.forEach((d) => rmSync(d, { recursive: true, force: true })))
  return out
}

const kidsOf = async (s: JwtService) => (await s.jwks()).keys.map((k) => k.kid)
const signingKid = async (s: JwtService) => decodeProtectedHeader((await s.sign(CHECKOUT, { audience: 'payments' })).token).kid

test('shared store: both daemons adopt one key; a rotate through A is followed by B (watch), and B publishes it even before its watch delivers; both switch to the new key at the activation; a retire through B reaches A', async (t) => {
  const doc = new MemoryDoc()
  const [da, db] = dirs(t, 2)
  const rb = doc.reader()
  const clock = new FakeClock(Date.now())
  const A = await JwtService.open(da!, 'weft.local', doc.reader(), silentLogger, { now: clock.now })
  const B = await JwtService.open(db!, 'weft.local', rb, silentLogger, { now: clock.now })
  const [oldKid] = await kidsOf(A)
  assert.deepEqual(await kidsOf(B), [oldKid], 'one key for both')

  rb.hold()
  const rotated = await A.rotate()
  assert.equal(await signingKid(A), oldKid, 'prepared: the old key signs until the activation')
  assert.deepEqual(await kidsOf(B), [rotated.kid, oldKid], 'B publishes the new key before its watch delivers: its JWKS reads the shared document first')
  assert.deepEqual((await B.view()).activatesAt, rotated.activatesAt, 'the same activation, from the stored rotatedAt')
  rb.release()
  clock.advance(ACTIVATE_DELAY_MS - 1)
  assert.deepEqual([await signingKid(A), await signingKid(B)], [oldKid, oldKid])
  clock.advance(1)
  assert.deepEqual([await signingKid(A), await signingKid(B)], [rotated.kid, rotated.kid], 'both switch at the activation')

  // Retired through B (forced: the rotate was 45 s ago): A publishes the one key left.
  await B.retire({ force: true })
  assert.deepEqual(await kidsOf(A), [rotated.kid])
  // The watch alone: A rotates again and B, asked nothing else, comes to publish and (from the activation) sign with the newest key.
  const again = await A.rotate()
  clock.advance(ACTIVATE_DELAY_MS)
  await eventually(async () => (await signingKid(B)) === again.kid, 5000, 'B signing with the key of the second rotate')
})

test('shared store: of two rotates at once, one is 409 (compare-and-set), and the set has one new key', async (t) => {
  const doc = new MemoryDoc()
  const [da, db] = dirs(t, 2)
  const ra = doc.reader()
  const rb = doc.reader()
  const A = await JwtService.open(da!, 'weft.local', ra)
  const B = await JwtService.open(db!, 'weft.local', rb)
  const [oldKid] = await kidsOf(A)
  const results = await Promise.allSettled([A.rotate(), B.rotate()])
  const won = results.filter((r) => r.status === 'fulfilled')
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status === 'rejected' ? String(r.reason) : 'ok')))
  assert.equal((lost[0]!.reason as HttpError).status, 409)
  assert.match((lost[0]!.reason as HttpError).message, /changed meanwhile through another daemon|already under way/)
  const kids = await kidsOf(A)
  assert.equal(kids.length, 2)
  assert.equal(kids[1], oldKid)
  assert.deepEqual(await kidsOf(B), kids)
})

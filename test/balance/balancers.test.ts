import assert from 'node:assert/strict'
import { test } from 'node:test'
import { quietMesh, service } from '../helpers/mesh.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function three(): Promise<Upstream[]> {
  return Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n)))
}

test('ring-hash on a header is sticky: the same key always lands on the same endpoint', async () => {
  const ups = await three()
  const mesh = await quietMesh([service('payments', { endpoints: ups.map((u) => ({ address: u.address })), loadBalancer: { policy: 'ring-hash', hashOn: { header: 'x-user' } } })])
  try {
    const owner = new Map<string, Set<string>>()
    for (let round = 0; round < 5; round++) {
      for (let user = 0; user < 60; user++) {
        const res = await mesh.request('http://payments/cart', { headers: { 'x-user': `user-${user}` } })
        await res.body.dump()
        const set = owner.get(`user-${user}`) ?? new Set()
        set.add(String(res.headers['x-served-by']))
        owner.set(`user-${user}`, set)
      }
    }
    for (const [user, set] of owner) assert.equal(set.size, 1, `${user} moved between endpoints`)
    const used = new Set([...owner.values()].map((s) => [...s][0]))
    assert.equal(used.size, 3, 'keys spread over every endpoint')
  } finally {
    await mesh.close()
    for (const u of ups) await u.close()
  }
})

test('round-robin spreads evenly', async () => {
  const ups = await three()
  const mesh = await quietMesh([service('payments', { endpoints: ups.map((u) => ({ address: u.address })), loadBalancer: { policy: 'round-robin' } })])
  try {
    for (let i = 0; i < 30; i++) await (await mesh.request('http://payments/x')).body.dump()
    assert.deepEqual(ups.map((u) => u.hits), [10, 10, 10])
  } finally {
    await mesh.close()
    for (const u of ups) await u.close()
  }
})

test('p2c peak-EWMA (the default) sends most traffic away from a slow endpoint', async () => {
  const ups = await three()
  ups[0]!.behaviour = async (req, res) => {
    await settle(40)
    res.end('slow')
  }
  // A 1 s decay (default 10 s) lets the estimates forget the cold-start connection cost within the test.
  const mesh = await quietMesh([service('payments', { endpoints: ups.map((u) => ({ address: u.address })), loadBalancer: { ewmaDecay: '1s' } })])
  try {
    for (let i = 0; i < 30; i++) {
      await Promise.all(Array.from({ length: 10 }, async () => (await mesh.request('http://payments/x')).body.dump()))
    }
    const slowShare = ups[0]!.hits / 300
    assert.ok(slowShare < 0.2, `slow endpoint share ${slowShare.toFixed(2)} (an even spread is 0.33)`)
  } finally {
    await mesh.close()
    for (const u of ups) await u.close()
  }
})

test('least-request prefers the endpoint with fewer requests in flight', async () => {
  const ups = await three()
  ups[0]!.behaviour = async (_req, res) => {
    await settle(60)
    res.end('slow')
  }
  const mesh = await quietMesh([service('payments', { endpoints: ups.map((u) => ({ address: u.address })), loadBalancer: { policy: 'least-request' } })])
  try {
    // A closed loop: 12 workers, each sending its next request when the last one is answered.
    await Promise.all(Array.from({ length: 12 }, async () => {
      for (let i = 0; i < 20; i++) await (await mesh.request('http://payments/x')).body.dump()
    }))
    assert.ok(ups[0]!.hits * 2 < ups[1]!.hits && ups[0]!.hits * 2 < ups[2]!.hits, `hits ${ups.map((u) => u.hits)}`)
  } finally {
    await mesh.close()
    for (const u of ups) await u.close()
  }
})

test('locality: traffic stays in the caller zone and fails over when its healthy share drops', async () => {
  const [a1, a2, b1] = await three()
  const mesh = await quietMesh([service('payments', {
    endpoints: [
      { address: a1!.address, labels: { zone: 'zone-a' } },
      { address: a2!.address, labels: { zone: 'zone-a' } },
      { address: b1!.address, labels: { zone: 'zone-b' } },
    ],
    loadBalancer: { policy: 'round-robin', locality: { minHealthyPercent: 60 } },
    retries: { attempts: 0 },
    circuitBreaker: { enabled: false },
    outlierDetection: { consecutive5xx: 1, baseEjectionTime: '30s', maxEjectionPercent: 50, panicThreshold: 0 },
  })], { locality: { zone: 'zone-a' } })
  try {
    for (let i = 0; i < 20; i++) await (await mesh.request('http://payments/x')).body.dump()
    assert.equal(b1!.hits, 0, 'all traffic stays in zone-a')
    // One of the two zone-a endpoints fails and is ejected: 50 % healthy < 60 % → spread to zone-b.
    a1!.behaviour = (_req, res) => {
      res.statusCode = 500
      res.end()
    }
    for (let i = 0; i < 4; i++) await (await mesh.request('http://payments/x')).body.dump()
    const before = b1!.hits
    for (let i = 0; i < 20; i++) await (await mesh.request('http://payments/x')).body.dump()
    assert.ok(b1!.hits - before >= 5, `zone-b took over part of the traffic (${b1!.hits - before} of 20)`)
  } finally {
    await mesh.close()
    for (const u of [a1!, a2!, b1!]) await u.close()
  }
})

// DNS discovery against a real DNS server (dns2 over UDP on 127.0.0.1): A/AAAA and SRV answers
// become endpoints, changed records are picked up without a restart, the TTL and refreshInterval
// decide when to look again, and a failing lookup keeps the last answer.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createMesh, type Mesh } from '../../src/index.js'
import { silentLogger as silent, type Logger } from '../../src/util/logger.js'
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js'
import { service } from '../helpers/mesh.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const SRV = '_http._tcp.payments.test'

async function dnsServer(t: TestContext): Promise<TestDnsServer> {
  const dns = await startDnsServer()
  t.after(() => dns.close())
  return dns
}

async function upstreams(t: TestContext, ...names: string[]): Promise<Upstream[]> {
  const ups = await Promise.all(names.map((n) => startUpstream(n)))
  t.after(() => Promise.all(ups.map((u) => u.close())))
  return ups
}

async function mesh(t: TestContext, spec: Record<string, unknown>, extra: { dnsServers?: string[]; logger?: Logger } = {}): Promise<Mesh> {
  const m = await createMesh({ service: 'checkout', config: [service('payments', spec)], logger: silent, ...extra })
  t.after(() => m.close())
  return m
}

/** One request through the mesh; returns the body (the upstream helper answers "ok from NAME"). */
async function call(m: Mesh, path = '/x'): Promise<string> {
  const res = await m.request(`http://payments${path}`)
  const body = await res.body.text()
  assert.equal(res.statusCode, 200, body)
  return body
}

async function calls(m: Mesh, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await call(m)
}

/** Polls `check` (every 50 ms) until it holds; fails after `ms`. Nothing waits longer than needed. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) assert.fail(`timed out after ${ms}ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('A records: dns.host resolves through dns.servers to a real upstream', async (t) => {
  const dns = await dnsServer(t)
  const [up] = await upstreams(t, 'a')
  dns.setA('payments.test', ['127.0.0.1'])
  const m = await mesh(t, { dns: { host: 'payments.test', port: up!.port, servers: [dns.address] } })

  assert.equal(await call(m, '/x'), 'ok from a')
  assert.equal(up!.hits, 1)
  assert.equal(up!.seen[0]!.url, '/x')
  assert.equal(dns.queries('payments.test', 'A'), 1, 'one A lookup at start')
  assert.equal(dns.queries('payments.test', 'AAAA'), 1, 'one AAAA lookup at start (no AAAA records is fine)')
})

test('A records: the mesh-wide dnsServers option is used when the Service names no servers', async (t) => {
  const dns = await dnsServer(t)
  const [up] = await upstreams(t, 'a')
  dns.setA('payments.test', ['127.0.0.1'])
  const m = await mesh(t, { dns: { host: 'payments.test', port: up!.port } }, { dnsServers: [dns.address] })

  assert.equal(await call(m), 'ok from a')
  assert.equal(dns.queries('payments.test', 'A'), 1)
})

test('AAAA records: an IPv6-only name reaches an upstream on [::1]', async (t) => {
  const dns = await dnsServer(t)
  let hits = 0
  const server = http.createServer((_req, res) => {
    hits++
    res.end('ok from v6')
  })
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(0, '::1', () => resolve(true))
  })
  if (!listening) return t.skip('no IPv6 loopback on this machine')
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  dns.setAAAA('payments.test', ['::1'])
  dns.setA('payments.test', []) // the name exists, with no A records
  const m = await mesh(t, { dns: { host: 'payments.test', port: (server.address() as AddressInfo).port, servers: [dns.address] } })

  assert.equal(await call(m), 'ok from v6')
  assert.equal(hits, 1)
})

test('SRV: two records for two targets; requests reach both servers', async (t) => {
  const dns = await dnsServer(t)
  const [a, b] = await upstreams(t, 'a', 'b')
  dns.setA('a.payments.test', ['127.0.0.1'])
  dns.setA('b.payments.test', ['127.0.0.1'])
  dns.setSrv(SRV, [
    { target: 'a.payments.test', port: a!.port },
    { target: 'b.payments.test', port: b!.port },
  ])
  const m = await mesh(t, { dns: { srv: SRV, servers: [dns.address] }, loadBalancer: { policy: 'round-robin' } })

  await calls(m, 10)
  assert.equal(a!.hits + b!.hits, 10)
  assert.ok(a!.hits > 0 && b!.hits > 0, `both servers get traffic (a=${a!.hits}, b=${b!.hits})`)
  assert.equal(dns.queries(SRV, 'SRV'), 1)
  assert.equal(dns.queries('a.payments.test', 'A'), 1)
  assert.equal(dns.queries('b.payments.test', 'A'), 1)
})

test('re-resolution: changed SRV records take effect without a restart', async (t) => {
  const dns = await dnsServer(t)
  const [a, b, c] = await upstreams(t, 'a', 'b', 'c')
  for (const n of ['a', 'b', 'c']) dns.setA(`${n}.payments.test`, ['127.0.0.1'])
  dns.setSrv(SRV, [
    { target: 'a.payments.test', port: a!.port },
    { target: 'b.payments.test', port: b!.port },
  ])
  const m = await mesh(t, { dns: { srv: SRV, servers: [dns.address], refreshInterval: '1s' }, loadBalancer: { policy: 'round-robin' } })
  await calls(m, 4)
  assert.equal(c!.hits, 0)

  // A third server joins.
  dns.setSrv(SRV, [
    { target: 'a.payments.test', port: a!.port },
    { target: 'b.payments.test', port: b!.port },
    { target: 'c.payments.test', port: c!.port },
  ])
  await until('the new SRV target to receive traffic', async () => {
    await call(m)
    return c!.hits > 0
  })

  // The first one leaves: once the replacement is seen, it gets nothing more.
  dns.setSrv(SRV, [
    { target: 'b.payments.test', port: b!.port },
    { target: 'c.payments.test', port: c!.port },
  ])
  const srvQueries = dns.queries(SRV, 'SRV')
  await until('two more SRV lookups', () => dns.queries(SRV, 'SRV') >= srvQueries + 2)
  const [ha, hb, hc] = [a!.hits, b!.hits, c!.hits]
  await calls(m, 6)
  assert.equal(a!.hits, ha, 'the removed endpoint gets no traffic')
  assert.ok(b!.hits > hb && c!.hits > hc, 'the remaining endpoints share the traffic')
})

test('TTL: a 2 s TTL is re-resolved after about the TTL although refreshInterval is 30 s', async (t) => {
  const dns = await dnsServer(t)
  const [up] = await upstreams(t, 'a')
  dns.setA('payments.test', ['127.0.0.1'], 2)
  const m = await mesh(t, { dns: { host: 'payments.test', port: up!.port, servers: [dns.address], refreshInterval: '30s' } })
  assert.equal(dns.queries('payments.test', 'A'), 1, 'one lookup at start, none right after (1 s floor)')

  // Only the TTL can cause a second lookup within this test's few seconds.
  await until('a lookup after the TTL expires', () => dns.queries('payments.test', 'A') >= 2, 6000)
  assert.equal(await call(m), 'ok from a')
})

test('TTL: a 60 s TTL is still re-resolved every refreshInterval (1 s)', async (t) => {
  const dns = await dnsServer(t)
  const [up] = await upstreams(t, 'a')
  dns.setA('payments.test', ['127.0.0.1'], 60)
  const m = await mesh(t, { dns: { host: 'payments.test', port: up!.port, servers: [dns.address], refreshInterval: '1s' } })
  assert.equal(dns.queries('payments.test', 'A'), 1)

  await until('two re-resolutions at the refresh interval', () => dns.queries('payments.test', 'A') >= 3, 6000)
  assert.equal(await call(m), 'ok from a')
})

test('TTL 0 is floored: lookups do not spin', async (t) => {
  const dns = await dnsServer(t)
  const [up] = await upstreams(t, 'a')
  dns.setA('payments.test', ['127.0.0.1'], 0)
  const m = await mesh(t, { dns: { host: 'payments.test', port: up!.port, servers: [dns.address], refreshInterval: '1s' } })
  assert.equal(await call(m), 'ok from a')
  // The next lookup is due no sooner than 1 s after the first: right after start there was only one.
  assert.equal(dns.queries('payments.test', 'A'), 1)
  await until('the floored re-resolution', () => dns.queries('payments.test', 'A') >= 2)
})

test('failure keeps the last answer: SERVFAIL and NXDOMAIN after the first lookup', async (t) => {
  const dns = await dnsServer(t)
  const [a, b] = await upstreams(t, 'a', 'b')
  dns.setA('a.payments.test', ['127.0.0.1'])
  dns.setA('b.payments.test', ['127.0.0.1'])
  dns.setSrv(SRV, [{ target: 'a.payments.test', port: a!.port }])
  const lines: string[] = []
  const logger: Logger = { info: (m) => void lines.push(`info ${m}`), warn: (m) => void lines.push(`warn ${m}`), error: (m) => void lines.push(`error ${m}`) }
  const m = await mesh(t, { dns: { srv: SRV, servers: [dns.address], refreshInterval: '1s' } }, { logger })
  assert.equal(await call(m), 'ok from a')

  for (const mode of ['servfail', 'nxdomain'] as const) {
    dns.mode = mode
    const before = dns.queries(SRV, 'SRV')
    await until(`two failed lookups (${mode})`, () => dns.queries(SRV, 'SRV') >= before + 2)
    const hits = a!.hits
    await calls(m, 3)
    assert.equal(a!.hits, hits + 3, `requests still reach the last known endpoint (${mode})`)
  }
  assert.equal(lines.filter((l) => l.startsWith('warn') && l.includes('failed')).length, 1, `one warning for the whole outage: ${lines.join(' | ')}`)

  // Recovery: the server answers again, now with another target.
  dns.mode = 'answer'
  dns.setSrv(SRV, [{ target: 'b.payments.test', port: b!.port }])
  await until('the recovered answer to take effect', async () => (await call(m)) === 'ok from b')
  assert.ok(lines.some((l) => l.startsWith('info') && l.includes('recovered')), lines.join(' | '))
})

test('a name missing at start gets endpoints once it appears', async (t) => {
  const dns = await dnsServer(t)
  const [up] = await upstreams(t, 'a')
  // No breaker: polling with calls that fail for want of endpoints would open it (by design).
  const m = await mesh(t, { dns: { host: 'payments.test', port: up!.port, servers: [dns.address], refreshInterval: '1s' }, circuitBreaker: { enabled: false } })
  await assert.rejects(call(m), { code: 'WEFT_ERR_NO_ENDPOINTS' })

  dns.setA('payments.test', ['127.0.0.1'])
  await until('the name to resolve', () => call(m).then(() => true, () => false))
  assert.equal(up!.hits, 1)
})

test('an SRV target without addresses does not hide the other targets', async (t) => {
  const dns = await dnsServer(t)
  const [a] = await upstreams(t, 'a')
  dns.setA('a.payments.test', ['127.0.0.1'])
  dns.setSrv(SRV, [
    { target: 'a.payments.test', port: a!.port },
    { target: 'gone.payments.test', port: 9 },
  ])
  const m = await mesh(t, { dns: { srv: SRV, servers: [dns.address] } })
  await calls(m, 3)
  assert.equal(a!.hits, 3)
})

test('an SRV target keeps its addresses through a failing lookup, and is dropped once its name is gone', async (t) => {
  const dns = await dnsServer(t)
  const [a, b] = await upstreams(t, 'a', 'b')
  dns.setA('a.payments.test', ['127.0.0.1'])
  dns.setA('b.payments.test', ['127.0.0.1'])
  dns.setSrv(SRV, [
    { target: 'a.payments.test', port: a!.port },
    { target: 'b.payments.test', port: b!.port },
  ])
  const m = await mesh(t, { dns: { srv: SRV, servers: [dns.address], refreshInterval: '1s' }, loadBalancer: { policy: 'round-robin' } })
  await calls(m, 4)
  assert.ok(a!.hits > 0 && b!.hits > 0)

  // b's A lookups fail (SERVFAIL): b stays in the set.
  dns.failName('b.payments.test', 'servfail')
  let before = dns.queries('b.payments.test', 'A')
  await until('two failed lookups of b', () => dns.queries('b.payments.test', 'A') >= before + 2)
  let hb = b!.hits
  await calls(m, 4)
  assert.ok(b!.hits > hb, 'b still gets traffic while its lookups fail')

  // b's name is gone (NXDOMAIN): b leaves the set, a keeps serving.
  dns.failName('b.payments.test', 'nxdomain')
  before = dns.queries('b.payments.test', 'A')
  await until('b to be dropped', async () => {
    if (dns.queries('b.payments.test', 'A') < before + 2) return false
    hb = b!.hits
    await calls(m, 4)
    return b!.hits === hb
  })
  assert.ok(a!.hits > 0)
})

test('close stops re-resolution', async (t) => {
  const dns = await dnsServer(t)
  const [up] = await upstreams(t, 'a')
  dns.setA('payments.test', ['127.0.0.1'], 0)
  const m = await createMesh({ service: 'checkout', config: [service('payments', { dns: { host: 'payments.test', port: up!.port, servers: [dns.address], refreshInterval: '1s' } })], logger: silent })
  await m.close()
  const after = dns.queries('payments.test', 'A')
  // A lookup would be due 1 s after start; wait past that (bounded) and see none arrive.
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal(dns.queries('payments.test', 'A'), after)
})

test('SRV priorities: only the lowest priority gets traffic; the next takes over when it is ejected', async (t) => {
  const dns = await dnsServer(t)
  const [primary, backup] = await upstreams(t, 'primary', 'backup')
  dns.setA('p.payments.test', ['127.0.0.1'])
  dns.setA('b.payments.test', ['127.0.0.1'])
  dns.setSrv(SRV, [
    { target: 'p.payments.test', port: primary!.port, priority: 10 },
    { target: 'b.payments.test', port: backup!.port, priority: 20 },
  ])
  const m = await mesh(t, {
    dns: { srv: SRV, servers: [dns.address] },
    retries: { attempts: 0 },
    circuitBreaker: { enabled: false },
    outlierDetection: { consecutive5xx: 2, baseEjectionTime: '30s', panicThreshold: 0 },
  })
  await calls(m, 10)
  assert.equal(primary!.hits, 10)
  assert.equal(backup!.hits, 0, 'the priority-20 target is a backup')
  primary!.behaviour = (_req, res) => {
    res.statusCode = 500
    res.end()
  }
  for (let i = 0; i < 2; i++) await (await m.request('http://payments/x')).body.dump()
  await calls(m, 5)
  assert.equal(backup!.hits, 5, 'with the primary ejected the backup serves')
})

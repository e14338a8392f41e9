// IdentityProvider: the instance's SVID from a real CA, renewed at half-life with jitter (never the
// whole fleet at once), retried with backoff when the CA is down, dropped at expiry, and a pushed
// trust bundle taken only when its sequence is newer.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { X509Certificate } from 'node:crypto'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { newBundle } from '../../src/identity/bundle.js'
import { parseSpiffeId } from '../../src/identity/spiffe-id.js'
import { IdentityProvider, type SvidSource } from '../../src/identity/provider.js'
import { capturingLogger } from '../helpers/mesh.js'

const ID = 'spiffe://weft.local/ns/default/sa/payments'

/** The provider's timers are unref'd (they must not hold a process open): the test holds the loop while it waits. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

async function caSource(ttlMs: number): Promise<{ source: SvidSource; ca: CertificateAuthority; signed: number[]; down: { on: boolean } }> {
  const ca = await CertificateAuthority.createRoot({ trustDomain: 'weft.local' })
  const signed: number[] = []
  const down = { on: false }
  const source: SvidSource = {
    async sign(csr) {
      if (down.on) throw new Error('connect ECONNREFUSED (test: CA down)')
      signed.push(Date.now())
      const s = await ca.sign(csr, { id: parseSpiffeId(ID), ttlMs })
      return { certChainPem: s.certChainPem, bundle: ca.bundle(1), notBefore: s.notBefore, notAfter: s.notAfter }
    },
  }
  return { source, ca, signed, down }
}

test('the first SVID is for the workload ID, with a fresh key, and its renewal is scheduled between 40 % and 50 % of its remaining life', async () => {
  const { source } = await caSource(60 * 60_000)
  const p = new IdentityProvider({ id: ID, source, logger: capturingLogger() })
  try {
    const m = await p.start()
    assert.ok(m)
    assert.equal(new X509Certificate(m.certChainPem[0]!).subjectAltName, `URI:${ID}`)
    const left = m.notAfter - Date.now()
    const due = p.nextRenewalAt! - Date.now()
    assert.ok(due >= left * 0.4 - 1000 && due <= left * 0.5 + 1000, `renewal in ${due} ms of ${left}`)
  } finally {
    p.close()
  }
})

test('200 instances given the same lifetime renew spread over the jitter window, not at one moment (F12)', async () => {
  const { source } = await caSource(60 * 60_000)
  const ps = Array.from({ length: 200 }, () => new IdentityProvider({ id: ID, source, logger: capturingLogger() }))
  try {
    await Promise.all(ps.map((p) => p.start()))
    const due = ps.map((p) => p.nextRenewalAt!).sort((a, b) => a - b)
    const span = due[due.length - 1]! - due[0]!
    assert.ok(span > 4 * 60_000, `renewals spread over ${span} ms (10 % of a 1 h life is 6 min)`)
    // No one-second window holds more than 5 % of the fleet.
    let worst = 0
    for (let i = 0, j = 0; i < due.length; i++) {
      while (due[i]! - due[j]! > 1000) j++
      worst = Math.max(worst, i - j + 1)
    }
    assert.ok(worst <= 10, `${worst} renewals within one second`)
  } finally {
    for (const p of ps) p.close()
  }
})

test('short lifetimes renew by themselves: a new certificate (and a new key) before the old one expires', async () => {
  const { source, signed } = await caSource(1500)
  const p = new IdentityProvider({ id: ID, source, logger: capturingLogger() })
  try {
    const first = await p.start()
    const next = await within(new Promise<typeof first>((resolve) => p.once('update', resolve)), 5000, 'the renewal')
    assert.ok(next && first && next !== first)
    assert.notEqual(next.keyPem, first.keyPem, 'each certificate has its own key')
    assert.ok(Date.now() < first.notAfter, 'renewed before the old certificate expired')
    assert.equal(signed.length, 2)
  } finally {
    p.close()
  }
})

test('the CA down: the certificate is kept until it expires, renewal retries with backoff, the failure is logged, then the certificate is dropped (fail closed)', async () => {
  const { source, down } = await caSource(1500)
  const log = capturingLogger()
  const p = new IdentityProvider({ id: ID, source, logger: log, retryBaseMs: 50, retryMaxMs: 200 })
  try {
    const m = await p.start()
    down.on = true
    assert.equal(p.current(), m)
    await within(new Promise((r) => p.once('update', r)), 5000, 'the expiry')
    assert.ok(Date.now() >= m!.notAfter - 50)
    assert.equal(p.current(), undefined, 'no certificate after expiry')
    assert.ok(log.lines.some((l) => /certificate request failed .*ECONNREFUSED/.test(l)), log.lines.join('\n'))
    assert.ok(log.lines.some((l) => /expired .* without renewal/.test(l)))
    down.on = false
    const back = await within(new Promise((resolve) => p.once('update', resolve)), 5000, 'a certificate again')
    assert.ok(back, 'a certificate again once the CA answers')
  } finally {
    p.close()
  }
})

test('a pushed bundle replaces the held one only with a higher sequence (F13)', async () => {
  const { source, ca } = await caSource(60 * 60_000)
  const p = new IdentityProvider({ id: ID, source, logger: capturingLogger() })
  try {
    await p.start()
    const other = await CertificateAuthority.createRoot({ trustDomain: 'weft.local' })
    const both = newBundle('weft.local', [ca.toPem().certPem, other.toPem().certPem], 2)
    p.updateBundle(both)
    assert.equal(p.current()!.bundle.sequence, 2)
    p.updateBundle(newBundle('weft.local', [other.toPem().certPem], 1))
    assert.equal(p.current()!.bundle.roots.length, 2, 'a lower sequence is ignored')
  } finally {
    p.close()
  }
})

// The daemon's CA through its API: a CSR for another identity is refused 403 naming both; an
// operator CA's bundle sequence grows across restarts exactly when its roots change (how an operator
// CA rotates: restart with a --ca-bundle holding both roots), and the CA's own ca.json is left alone.
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId } from '../../src/identity/spiffe-id.js'
import { forgeIntermediate } from '../identity/pki.js'
import type { DaemonOptions } from '../../src/daemon/index.js'
import { call, register, startTestDaemon } from '../helpers/daemon.js'

const TD = 'weft.local'

test('a CSR asking for another identity is refused 403 naming both; one for its own identity is signed', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const inst = await register(d, { service: 'checkout' })
  const keys = await generateKeyPair()
  const wrong = await call(d.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr: await createCsr(keys, workloadId(TD, 'default', 'payments')) })
  assert.equal(wrong.status, 403)
  assert.equal(wrong.body.error.code, 'WEFT_ERR_FORBIDDEN')
  assert.match(wrong.body.error.message, /instance .* may have only its own identity/)
  assert.match(wrong.body.error.message, /spiffe:\/\/weft\.local\/ns\/default\/sa\/payments/)
  assert.match(wrong.body.error.message, /spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout/)
  const right = await call(d.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr: await createCsr(keys, workloadId(TD, 'default', 'checkout')) })
  assert.equal(right.status, 200)
  assert.equal(new X509Certificate(right.body.certChain[0]).subjectAltName, 'URI:spiffe://weft.local/ns/default/sa/checkout')
})

test('operator CA: the bundle sequence stays across a restart with the same roots and grows when they change', async (t) => {
  const rootA = (await CertificateAuthority.createRoot({ trustDomain: TD })).toPem()
  const rootB = (await CertificateAuthority.createRoot({ trustDomain: TD })).toPem()
  const interB = await forgeIntermediate(rootB, TD)
  const first = await startTestDaemon()
  const dataDir = first.dataDir
  // The CA made here at first start: an operator CA later must not overwrite it.
  const made = readFileSync(join(dataDir, 'ca', 'ca.json'), 'utf8')
  const madeSeq = (await call(first.url, 'GET', '/v1/bundle', first.adminToken)).body.sequence as number
  await first.daemon.close()

  const bundleOf = async (ca: DaemonOptions['ca']) => {
    const d = await startTestDaemon({ dataDir, ca })
    t.after(() => d.daemon.close())
    const b = (await call(d.url, 'GET', '/v1/bundle', d.adminToken)).body as { sequence: number; roots: string[] }
    await d.daemon.close()
    return b
  }
  const a1 = await bundleOf({ certPem: rootA.certPem, keyPem: rootA.keyPem })
  assert.deepEqual(a1.roots.map((r) => new X509Certificate(r).fingerprint256), [new X509Certificate(rootA.certPem).fingerprint256])
  assert.ok(a1.sequence > madeSeq, `the operator's bundle (${a1.sequence}) follows the one made here (${madeSeq})`)
  const a2 = await bundleOf({ certPem: rootA.certPem, keyPem: rootA.keyPem })
  assert.equal(a2.sequence, a1.sequence, 'same roots: same sequence')
  // Rotation to root B: an intermediate of B signs, both roots trusted.
  const both = await bundleOf({ certPem: interB.certPem, keyPem: interB.keyPem, bundlePem: rootA.certPem + rootB.certPem })
  assert.equal(both.roots.length, 2)
  assert.equal(both.sequence, a1.sequence + 1, 'new roots: the sequence grows, so running instances take the bundle')
  const bOnly = await bundleOf({ certPem: interB.certPem, keyPem: interB.keyPem, bundlePem: rootB.certPem })
  assert.equal(bOnly.sequence, both.sequence + 1)
  assert.equal(readFileSync(join(dataDir, 'ca', 'ca.json'), 'utf8'), made, 'the CA made here is left as it was')
})

test('signing is rate-limited per instance: 6 a minute with the default lifetime (the 7th is 429), more with a lifetime of seconds', async (t) => {
  const csrFor = async (service: string) => createCsr(await generateKeyPair(), workloadId(TD, 'default', service))
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const inst = await register(d, { service: 'checkout' })
  const csr = await csrFor('checkout')
  for (let i = 0; i < 6; i++) assert.equal((await call(d.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr })).status, 200)
  const seventh = await call(d.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr })
  assert.equal(seventh.status, 429)
  assert.equal(seventh.body.error.code, 'WEFT_ERR_RATE_LIMITED')
  assert.match(seventh.body.error.message, /limit 6/)
  assert.equal(seventh.headers['retry-after'], '10')

  // A 3 s lifetime renews every ~1.5 s: the limit follows (4 lifetimes' worth a minute).
  const short = await startTestDaemon({ svidTtlMs: 3000 })
  t.after(() => short.daemon.close())
  const fast = await register(short, { service: 'checkout' })
  for (let i = 0; i < 12; i++) assert.equal((await call(short.url, 'POST', `/v1/instances/${fast.id}/svid`, fast.token, { csr })).status, 200, `request ${i + 1}`)
})

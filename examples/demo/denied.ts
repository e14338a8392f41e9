// The demo's denied call: a fourth workload, "reports", joins the mesh and calls payments, whose
// AuthorizationPolicy accepts only checkout. The mesh answers 403 WEFT_ERR_FORBIDDEN naming the
// policy, and `weft explain` says why (which policy, which rule, what did not match).
import { createMesh, type Logger } from '../../src/index.js'
import type { DemoDaemon } from './daemon.js'

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} }

export async function deniedCall(daemon: DemoDaemon): Promise<string[]> {
  const mesh = await createMesh({ service: 'reports', control: daemon.url, token: daemon.joinToken, logger: quiet })
  try {
    const deadline = Date.now() + 5000
    while ((mesh.snapshot?.lookup('payments')?.runtime.endpoints.list().length ?? 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const res = await mesh.request('http://payments/charge', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"cart":"x","amount":1}' })
    const text = await res.body.text()
    let message = text
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message
    } catch {}
    const x = await daemon.explain('reports', 'http://payments/charge', 'POST')
    const lines = [
      `reports (a new workload, over mTLS as ${mesh.identity.id}) → POST http://payments/charge`,
      `  answered ${res.statusCode} ${String(res.headers['weft-error-code'] ?? '')}: ${message}`,
    ]
    if (x.kind === 'routed') {
      lines.push(`  weft explain --from reports http://payments/charge -X POST:`)
      lines.push(`    access ${x.access.allowed ? 'allowed' : 'DENIED'}: ${x.access.why}`)
      for (const p of x.access.policies.filter((p) => p.applies)) {
        for (const r of p.rules) lines.push(`    ${p.action} ${p.name} rule ${r.index}: ${r.matched ? 'matches' : `no match (${r.why ?? ''})`}`)
      }
      lines.push(`    mtls ${x.access.mtls.mode} (${x.access.mtls.from})`)
    }
    return lines
  } finally {
    await mesh.close()
  }
}

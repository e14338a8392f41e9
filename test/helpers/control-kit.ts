// Meshed instances on a control daemon for the control-plane tests: a payments-like HTTP service
// that answers with its name, a caller, and a traffic loop that counts failures.
import http from 'node:http'
import type { TestContext } from 'node:test'
import type { AddressInfo } from 'node:net'
import { createMesh, type Mesh } from '../../src/index.js'
import { capturingLogger, type CapturingLogger } from './mesh.js'
import { applyPolicy, call, eventually, startTestDaemon, type TestDaemon } from './daemon.js'

export type LoggedMesh = Mesh & { log: CapturingLogger }

export async function controlMesh(t: { url: string | string[]; joinToken: string }, service: string, extra: Record<string, unknown> = {}): Promise<LoggedMesh> {
  const log = capturingLogger()
  const mesh = await createMesh({ service, control: t.url, token: t.joinToken, logger: log, ...extra })
  return Object.assign(mesh, { log })
}

/**
 * A meshed HTTP server of `service` on the daemon (its own SVID once registered), answering its
 * name; `served.count` counts the requests its handler ran.
 */
export async function meshedNameServer(d: { url: string; joinToken: string }, service: string) {
  const mesh = await controlMesh(d, service)
  const served = { count: 0 }
  const server = http.createServer((_req, res) => {
    served.count++
    res.end(service)
  })
  const { port } = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  return { mesh, port, served, address: `127.0.0.1:${port}` }
}

/** payments with retries off: a dropped request would be a failure, never hidden by a retry. */
export const PAYMENTS_NO_RETRIES = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec:\n  protocol: http\n  retries: { attempts: 0 }\n'

/**
 * A daemon holding PAYMENTS_NO_RETRIES and a meshed `payments` under it (STRICT mTLS) serving
 * `handler` (default: "ok") with 60 s keep-alive; all closed after the test. `prepare` sees the
 * server before it listens (to watch its connections).
 */
export async function paymentsUnderDaemon(t: TestContext, handler: (payments: LoggedMesh) => http.RequestListener = () => (_req, res) => res.end('ok'), prepare?: (server: http.Server) => void): Promise<{ d: TestDaemon; payments: LoggedMesh; server: http.Server; port: number }> {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, PAYMENTS_NO_RETRIES)
  if (applied.status !== 200) throw new Error(`policy refused: ${JSON.stringify(applied.body)}`)
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const server = http.createServer(handler(payments))
  server.keepAliveTimeout = 60_000
  prepare?.(server)
  const { port } = (await payments.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  return { d, payments, server, port }
}

/** A meshed HTTP server registered with the daemon; answers every request with `name`. */
export async function servingInstance(t: { url: string | string[]; joinToken: string }, service: string, name: string, labels: Record<string, string> = {}): Promise<{ mesh: LoggedMesh; port: number; close(): Promise<void> }> {
  const mesh = await controlMesh(t, service, { labels: { name, ...labels } })
  const server = http.createServer((_req, res) => res.end(name))
  const { port } = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  return { mesh, port, close: () => mesh.close() }
}

export type Served = Awaited<ReturnType<typeof servingInstance>>

/**
 * The usual cast: payments instances (name → labels) and a checkout caller, all registered with
 * the daemon(s); closed after the test, the caller first.
 */
export async function paymentsAndCheckout<K extends string>(t: TestContext, d: { url: string | string[]; joinToken: string }, instances: Record<K, Record<string, string>>): Promise<{ checkout: LoggedMesh; payments: Record<K, Served> }> {
  const payments = {} as Record<K, Served>
  for (const name of Object.keys(instances) as K[]) payments[name] = await servingInstance(d, 'payments', name, instances[name])
  const checkout = await controlMesh(d, 'checkout')
  t.after(async () => {
    await checkout.close()
    for (const p of Object.values<Served>(payments)) await p.close()
  })
  return { checkout, payments }
}

/** Endpoint addresses of `service` in the mesh's current snapshot. */
export function endpointsOf(mesh: Mesh, service: string): string[] {
  return mesh.snapshot?.lookup(service)?.runtime.endpoints.list().map((e) => e.address).sort() ?? []
}

export async function waitEndpoints(mesh: Mesh, service: string, n: number, timeoutMs = 5000): Promise<string[]> {
  return eventually(async () => {
    const eps = endpointsOf(mesh, service)
    return eps.length === n ? eps : undefined
  }, timeoutMs, `${n} endpoints of ${service} in ${mesh.service}'s snapshot (has ${endpointsOf(mesh, service).join(', ') || 'none'})`)
}

/** GET http://<service>/ through the mesh `n` times; the bodies. */
export async function hits(mesh: Mesh, service: string, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await mesh.request(`http://${service}/`)
    out.push(await res.body.text())
  }
  return out
}

/** Calls through the mesh with `concurrency` loops until stopped; counts answers and failures. */
/**
 * Calls `service` through `mesh` in `concurrency` loops until stop(). Also stopped when the test
 * ends, so a test that fails before its stop() does not keep the process (and its file) running.
 */
export function trafficLoop(t: TestContext, mesh: Mesh, service: string, concurrency = 4): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true
  let ok = 0
  const failed: string[] = []
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const res = await mesh.request(`http://${service}/`)
        await res.body.text()
        if (res.statusCode === 200) ok++
        else failed.push(`HTTP ${res.statusCode}`)
      } catch (err) {
        failed.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
      }
      await new Promise((r) => setTimeout(r, 2))
    }
  }
  const loops = Array.from({ length: concurrency }, loop)
  t.after(() => {
    running = false
  })
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      return { ok, failed }
    },
  }
}

export interface StatusRow {
  id: string
  service: string
  state: string
  ackedVersion?: number
  sentVersion?: number
  nack?: { version: number; error: string }
  /** What the instance keeps that the daemon dropped without a DELETE (RELIABILITY F5). */
  keptDeleted?: string[]
}

export async function statusOf(t: TestDaemon): Promise<{ version: number; instances: StatusRow[] }> {
  const r = await call(t.url, 'GET', '/v1/status', t.adminToken)
  if (r.status !== 200) throw new Error(`status answered ${r.status}`)
  return r.body
}

/**
 * Waits until every listed instance is SYNCED at the daemon's current version, which is at least
 * the stored policy's: the daemon answers an apply before it pushes (it batches changes over a
 * short window), so right after an apply its status may still show the previous version with
 * everyone SYNCED there.
 */
export async function waitSynced(t: TestDaemon, ids: string[], timeoutMs = 5000): Promise<number> {
  let last: Awaited<ReturnType<typeof statusOf>> | undefined
  const policy = await call(t.url, 'GET', '/v1/policy', t.adminToken)
  const atLeast = policy.status === 200 ? (policy.body as { version: number }).version : 0
  try {
    return await eventually(async () => {
      const st = (last = await statusOf(t))
      const ok = st.version >= atLeast && ids.every((id) => st.instances.some((i) => i.id === id && i.state === 'SYNCED' && i.ackedVersion === st.version))
      return ok ? st.version : undefined
    }, timeoutMs, `instances ${ids.join(', ')} SYNCED`)
  } catch (err) {
    // Say where each one was, so a failure explains itself.
    const seen = last ? `; the daemon at version ${last.version} last said: ${JSON.stringify(last.instances.filter((i) => ids.includes(i.id)))}` : ''
    throw new Error(`${(err as Error).message}${seen}`, { cause: err })
  }
}

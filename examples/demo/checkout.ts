// The "checkout" service: an Express 5 app with its own mesh and `app.use(weft(mesh))`, on
// 127.0.0.1:0. POST /checkout/:cart charges the cart through `mesh.fetch('http://payments/charge')`;
// the handler forwards no header, yet the call carries the request's deadline, trace and caller chain.
import express from 'express'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { weft } from '../../adapters/express/index.js'
import { createMesh, currentContext, isWeftError, type Logger, type Mesh } from '../../src/index.js'
import type { ControlInfo } from './instances.js'

/** checkout's own view of its calls to payments (the outbound hop). */
export interface OutboundStats {
  calls: number
  ok: number
  /** Final status codes (0 = the call threw). */
  byStatus: Map<number, number>
  /** Error codes of calls that threw. */
  errors: Map<string, number>
  /** Final responses by instance (x-served-by). */
  servedBy: Map<string, number>
  /** mesh.fetch latency in ms, retries included. */
  latencies: number[]
  /** Responses whose payments handler saw checkout's trace id, and the weft-caller values it saw. */
  traceJoined: number
  callers: Map<string, number>
  /** Responses whose ledger post ran under checkout's trace id (two hops on, no header forwarded). */
  ledgerTraceJoined: number
  /** Deadline left (ms) when payments handled the charge. */
  deadlineLeft: number[]
}

export interface Checkout {
  mesh: Mesh
  origin: string
  stats: OutboundStats
  close(): Promise<void>
}

interface ChargeReply {
  servedBy?: string
  traceId?: string
  caller?: string
  deadlineLeftMs?: number | null
  ledgerTraceId?: string
}

const bump = <K>(m: Map<K, number>, k: K): void => void m.set(k, (m.get(k) ?? 0) + 1)

export async function startCheckout(control: ControlInfo, logger: Logger): Promise<Checkout> {
  const stats: OutboundStats = { calls: 0, ok: 0, byStatus: new Map(), errors: new Map(), servedBy: new Map(), latencies: [], traceJoined: 0, callers: new Map(), ledgerTraceJoined: 0, deadlineLeft: [] }
  // No event-loop shedding for checkout: it shares the demo's process with the load generator and
  // the ledger, so this loop's load is not checkout's own, and the plain HTTP client in front of it
  // does not retry a shed request. The payments processes keep the default shedding.
  // Its policy (payments' Service and route) and the payments endpoints come from the daemon.
  const mesh = await createMesh({ service: 'checkout', control: control.url, token: control.token, logger, inbound: { shedding: false } })
  const app = express()
  app.use(weft(mesh))
  app.use(express.json())

  app.post('/checkout/:cart', async (req, res) => {
    const cart = req.params.cart
    const t0 = performance.now()
    stats.calls++
    try {
      // One charge per cart: the cart id is the Idempotency-Key, so the mesh may retry the POST.
      const r = await mesh.fetch('http://payments/charge', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `cart-${cart}` },
        body: JSON.stringify({ cart, amount: Number(req.body?.amount) || 0, currency: 'EUR' }),
      })
      const body = r.ok ? ((await r.json()) as ChargeReply) : (await r.arrayBuffer(), {})
      stats.latencies.push(performance.now() - t0)
      bump(stats.byStatus, r.status)
      const by = r.headers.get('x-served-by')
      if (by) bump(stats.servedBy, by)
      if (!r.ok) {
        res.status(502).json({ cart, paid: false, error: `payments answered ${r.status}` })
        return
      }
      stats.ok++
      const traceId = currentContext()?.traceId
      if (body.traceId === traceId) stats.traceJoined++
      if (body.ledgerTraceId === traceId) stats.ledgerTraceJoined++
      if (body.caller) bump(stats.callers, body.caller)
      if (typeof body.deadlineLeftMs === 'number') stats.deadlineLeft.push(body.deadlineLeftMs)
      res.json({ cart, paid: true, servedBy: body.servedBy })
    } catch (err) {
      stats.latencies.push(performance.now() - t0)
      bump(stats.byStatus, 0)
      const weftErr = weftErrorIn(err)
      bump(stats.errors, weftErr?.code ?? (err as Error).name)
      res.status(weftErr?.httpStatus ?? 502).json({ cart, paid: false, error: weftErr?.code ?? String(err) })
    }
  })

  // mesh.secure: the mTLS front door (checkout is the edge, PERMISSIVE: the plain client comes in
  // plaintext, meshed callers over mTLS).
  const server: Server = mesh.secure(app.listen(0, '127.0.0.1'))
  await once(server, 'listening')
  await mesh.register({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' })
  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    // The client has stopped: close the listener, then the mesh (drains, then closes its pools).
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeIdleConnections()
    setTimeout(() => server.closeAllConnections(), 500).unref()
    await closed
    await mesh.close()
  }
  return { mesh, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats, close: () => (closing ??= close()) }
}

/** fetch wraps dispatcher errors in TypeError('fetch failed'); the WeftError is its cause. */
function weftErrorIn(err: unknown): { code: string; httpStatus: number } | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (isWeftError(e)) return e
  return undefined
}

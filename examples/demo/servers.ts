// The demo's "payments" instances: real node:http servers on 127.0.0.1 that name themselves in x-served-by.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface InstanceSpec {
  name: string
  version: string
  zone: string
  /** Share of requests (0..1) answered with 503 instead of served. */
  failRate: number
}

export interface Instance extends InstanceSpec {
  address: string
  /** Requests this instance answered (attempts, retries included), and how many of them with 503. */
  served: number
  failed: number
}

export interface Payments {
  instances: Instance[]
  close(): Promise<void>
}

export const PAYMENTS: readonly InstanceSpec[] = [
  { name: 'v1-a', version: 'v1', zone: 'zone-a', failRate: 0.2 },
  { name: 'v1-b', version: 'v1', zone: 'zone-b', failRate: 0 },
  { name: 'v2', version: 'v2', zone: 'zone-a', failRate: 0 },
]

/** Starts one server per spec on an ephemeral loopback port. */
export async function startPayments(specs: readonly InstanceSpec[] = PAYMENTS): Promise<Payments> {
  const servers: http.Server[] = []
  const instances: Instance[] = []
  try {
    for (const spec of specs) {
      const inst: Instance = { ...spec, address: '', served: 0, failed: 0 }
      const server = http.createServer((req, res) => handle(inst, req, res))
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      inst.address = `127.0.0.1:${(server.address() as AddressInfo).port}`
      instances.push(inst)
    }
  } catch (err) {
    await closeAll(servers)
    throw err
  }
  return { instances, close: () => closeAll(servers) }
}

function handle(inst: Instance, req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    inst.served++
    // 1–4 ms of "work", so latency percentiles have something to show.
    setTimeout(() => {
      res.setHeader('x-served-by', inst.name)
      if (Math.random() < inst.failRate) {
        inst.failed++
        res.writeHead(503, { 'content-type': 'text/plain' }).end('payments unavailable\n')
        return
      }
      const body = JSON.stringify({ ok: true, servedBy: inst.name, version: inst.version, method: req.method, bytesIn: Buffer.concat(chunks).length })
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    }, 1 + Math.random() * 3)
  })
}

async function closeAll(servers: http.Server[]): Promise<void> {
  await Promise.all(servers.filter((s) => s.listening).map((s) => new Promise<void>((resolve) => {
    s.close(() => resolve())
    s.closeIdleConnections()
    // Anything still open after a moment (a stuck client) is cut, so the demo always ends.
    setTimeout(() => s.closeAllConnections(), 500).unref()
  })))
}

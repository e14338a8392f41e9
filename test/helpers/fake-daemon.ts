// A FAKE control daemon for protocol tests: a node:http server on loopback speaking just enough of
// the control protocol (register, watch, ack, heartbeat, address, deregister), with each watch
// stream handed to the test, which writes what its case needs. A real daemon only ever serializes
// valid messages of its own protocol level, so a scripted stand-in is the only way to send
// malformed bytes (malformed-stream.test.ts) or a newer daemon's messages (version-skew.test.ts):
// the fake control plane the STYLE page allows for protocol tests. The mesh under test is a real
// createMesh({ control, token }) (compose → validate → compile → apply, ACK/NACK) pointed at it.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { createMesh, type MeshOptions, type Mesh } from '../../src/index.js'
import { capturingLogger } from './mesh.js'

export type Ack = { version: number; error?: string }
export type Watch = { n: number; since: string | null; res: http.ServerResponse }

const ID = /^\/v1\/instances\/([^/?]+)/
export const service = (name: string, spec: Record<string, unknown> = {}) => ({ apiVersion: 'weft/v1', kind: 'Service', metadata: { name }, spec })
export const snapshot = (version: number, resources: object[] = [service('payments', { timeout: '2s' })], endpoints: object = {}) => ({ type: 'snapshot', version, resources, endpoints })
export const line = (m: unknown) => JSON.stringify(m) + '\n'
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function until<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = f()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * A fake daemon: registers any instance (lease 60 s, so no ping is needed), records every ACK/NACK
 * body and every watch request, and hands each watch stream to `onWatch` (after the 200), which
 * writes what the case needs. Then a real mesh in control mode on it, started (first view applied).
 */
export async function fakeDaemon(t: TestContext, onWatch: (w: Watch) => void | Promise<void>, extra: Partial<MeshOptions> = {}) {
  const acks: Ack[] = []
  const watches: Watch[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (req.method === 'POST' && url.pathname === '/v1/register') {
        const reg = JSON.parse(body) as { id: string }
        res.writeHead(201, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ id: reg.id, token: 'wi.fake', leaseTtlMs: 60_000 }))
      }
      if (req.method === 'GET' && ID.test(url.pathname) && url.pathname.endsWith('/watch')) {
        const w = { n: watches.length + 1, since: url.searchParams.get('version'), res }
        watches.push(w)
        res.on('error', () => {})
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.flushHeaders()
        void Promise.resolve(onWatch(w)).catch(() => res.destroy())
        return
      }
      if (req.method === 'POST' && url.pathname.endsWith('/ack')) acks.push(JSON.parse(body) as Ack)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"ok":true}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const log = capturingLogger()
  let mesh: Mesh | undefined
  t.after(async () => {
    await mesh?.close()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  // No bundle is sent: identity waits controlTimeoutMs for a certificate and gives up (logged).
  mesh = await createMesh({ service: 'checkout', control: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 'wj.fake', logger: log, controlTimeoutMs: 500, ...extra })
  const ackOf = (v: number, nack: boolean) => until(`${nack ? 'NACK' : 'ACK'} of version ${v}`, () => acks.find((a) => a.version === v && (a.error !== undefined) === nack))
  const watchNo = (n: number) => until(`watch request #${n}`, () => watches[n - 1])
  return { mesh, log, acks, watches, ackOf, watchNo }
}

// Real node:http upstreams on 127.0.0.1:0 for integration tests, with per-server behaviour the
// test can change at run time and counters of what each server received.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void | Promise<void>

export interface Upstream {
  server: http.Server
  port: number
  address: string
  name: string
  hits: number
  /** Bodies and headers the server received, newest last. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[]
  behaviour: Behaviour
  close(): Promise<void>
}

export const ok = (name: string): Behaviour => (_req, res) => {
  res.setHeader('x-served-by', name)
  res.end(`ok from ${name}`)
}

export const status = (code: number): Behaviour => (_req, res) => {
  res.statusCode = code
  res.end(`status ${code}`)
}

export async function startUpstream(name: string, behaviour: Behaviour = ok(name)): Promise<Upstream> {
  const up: Upstream = {
    server: http.createServer(),
    port: 0,
    address: '',
    name,
    hits: 0,
    seen: [],
    behaviour,
    close: () => new Promise((resolve) => {
      up.server.closeAllConnections()
      up.server.close(() => resolve())
    }),
  }
  up.server.on('request', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const n = up.hits++
      up.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() })
      void up.behaviour(req, res, n)
    })
  })
  await new Promise<void>((resolve) => up.server.listen(0, '127.0.0.1', resolve))
  up.port = (up.server.address() as AddressInfo).port
  up.address = `127.0.0.1:${up.port}`
  return up
}

/** A port on which nothing listens (bound then released). */
export async function deadPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

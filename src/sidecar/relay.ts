// One proxied request, the same on both sides of the sidecar: the request streams on through a
// dispatcher (the app's pool inbound, the mesh outbound), the answer streams back less its
// hop-by-hop headers, and a caller that goes away cancels the request behind it.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline, type Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { endToEndHeaders } from './hop-headers.js'

export interface RelayTarget {
  origin: string
  path: string
  headers: Record<string, string | string[]>
}

/** `fail` answers an error that came before any response (it is not called once the caller left). */
export function relay(req: IncomingMessage, res: ServerResponse, dispatcher: Dispatcher, to: RelayTarget, fail: (err: Error) => void): void {
  // Once the answer streams, pipeline ends it when the response closes early.
  const abort = new AbortController()
  res.on('close', () => {
    if (!res.writableFinished) abort.abort()
  })
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined
  dispatcher.request({
    origin: to.origin,
    path: to.path,
    method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: to.headers,
    body: hasBody ? req : null,
    signal: abort.signal,
  }).then(
    (answer) => {
      for (const [k, v] of Object.entries(endToEndHeaders(answer.headers as Record<string, string | string[]>))) res.setHeader(k, v)
      res.writeHead(answer.statusCode)
      pipeline(answer.body, res, () => {})
    },
    (err: Error) => {
      if (!abort.signal.aborted) fail(err)
    },
  )
}

/** Joins two connections into one (an upgraded one): bytes both ways; either ending ends the other. */
export function splice(a: Duplex, b: Duplex): void {
  a.pipe(b)
  b.pipe(a)
  a.on('error', () => b.destroy())
  b.on('error', () => a.destroy())
  a.once('close', () => b.destroy())
  b.once('close', () => a.destroy())
}

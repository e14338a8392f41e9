// Ending one connection a node:http server serves, from outside node:http: the front door does it
// when the peer is no longer trusted (its certificate expired, its root was retired) and when a
// plaintext connection's server became STRICT.
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { END_GRACE_MS } from '../identity/plaintext-watch.js'

/**
 * Ends `socket` gracefully where node:http allows: idle, it is destroyed at once; with a response
 * in flight, that response finishes (with `connection: close` when its headers are not sent yet,
 * so the client opens no request behind it) and the socket is then closed, or destroyed after
 * END_GRACE_MS. node:http has no public per-socket "busy" signal; the in-flight response is read
 * from `socket._httpMessage`, the field its own closeIdleConnections() reads. Not an HTTP socket
 * (no such field, e.g. upgraded): destroyed. Returns the grace timer (unref'd), if one was armed.
 */
export function endHttpConnection(socket: Socket): NodeJS.Timeout | undefined {
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (!res || typeof res.setHeader !== 'function' || res.writableFinished) {
    socket.destroy()
    return undefined
  }
  if (!res.headersSent) res.setHeader('connection', 'close')
  res.once('finish', () => socket.destroySoon())
  res.once('close', () => socket.destroySoon())
  const timer = setTimeout(() => socket.destroy(), END_GRACE_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
  return timer
}

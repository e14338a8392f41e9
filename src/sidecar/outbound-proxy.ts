// The sidecar's outbound half: a plain-HTTP proxy on loopback for the application. It takes both
// request forms an HTTP client sends: absolute-form (`GET http://payments/charge`, what HTTP_PROXY
// makes clients send) and origin-form with `Host: payments` (an app pointed at the proxy's address
// as if it were the service). The host names the mesh service; the call goes through
// mesh.dispatcher, so it gets the whole client stack (Route, balancing, retries with budget,
// breaker, deadline, mTLS, metrics) exactly as an in-process call. A host the mesh does not know is
// refused (404 WEFT_ERR_NOT_FOUND): the proxy is the mesh's door, not an open proxy. WebSocket
// upgrades go through the stack too, then the two sockets are spliced.
import { STATUS_CODES, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { WeftError, isWeftError } from '../errors/index.js'
import type { Mesh } from '../mesh.js'
import { writeError } from '../http/server.js'
import { writeRawError } from '../http/upgrade.js'
import { originHost } from '../http/dispatcher.js'
import { endToEndHeaders, rawResponseHead } from './hop-headers.js'
import { relay, splice } from './relay.js'

interface Target {
  service: string
  path: string
}

/** The mesh service and path a proxied request names, or a WeftError saying why it names none. */
function targetOf(req: IncomingMessage, mesh: Mesh): Target | WeftError {
  let url = req.url ?? '/'
  let authority = req.headers.host ?? ''
  if (/^https?:\/\//i.test(url)) {
    const rest = url.slice(url.indexOf('//') + 2)
    const slash = rest.indexOf('/')
    authority = slash < 0 ? rest : rest.slice(0, slash)
    url = slash < 0 ? '/' : rest.slice(slash)
  }
  if (authority === '') return new WeftError('WEFT_ERR_NOT_FOUND', 'the request names no service: send it as `GET http://<service>/path` (HTTP_PROXY) or with `Host: <service>`')
  // The dispatcher's own reading of a host (port dropped, lowercased; an IPv6 literal names no service).
  const host = originHost(authority)
  if (host === undefined || !mesh.snapshot?.lookup(host)) return new WeftError('WEFT_ERR_NOT_FOUND', `"${host ?? authority}" is not a service the mesh knows; the sidecar's outbound proxy only sends to mesh services`, { details: { host: host ?? authority } })
  return { service: host, path: url }
}

export interface OutboundProxy {
  handler: RequestListener
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  /** Ends the app's upgraded connections still open (node's server.close() would wait for them). */
  destroyUpgraded(): void
}

export function outboundProxy(mesh: Mesh): OutboundProxy {
  /** The app's connections being upgraded or upgraded through the proxy, until they close. */
  const upgraded = new Set<Duplex>()
  const fail = (res: ServerResponse, err: Error): void => {
    const e = isWeftError(err) ? err : new WeftError('WEFT_ERR_UPSTREAM_RESET', `the call ended early: ${err.message}`, { cause: err })
    writeError(res, mesh.inbound.errorResponse(e, undefined))
  }

  const handler: RequestListener = (req, res) => {
    const target = targetOf(req, mesh)
    if (target instanceof WeftError) return fail(res, target)
    relay(req, res, mesh.dispatcher, { origin: `http://${target.service}`, path: target.path, headers: endToEndHeaders(req.headers, ['host']) }, (err) => fail(res, err))
  }

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const target = targetOf(req, mesh)
    const answerRaw = (err: Error): void => writeRawError(socket, mesh.inbound.errorResponse(err, undefined))
    if (target instanceof WeftError) return answerRaw(target)
    upgraded.add(socket)
    socket.once('close', () => upgraded.delete(socket))
    socket.on('error', () => socket.destroy())
    let aborted: ((err?: Error) => void) | undefined
    let answered = false
    socket.once('close', () => aborted?.())
    mesh.dispatcher.dispatch({
      origin: `http://${target.service}`,
      path: target.path,
      method: (req.method ?? 'GET') as 'GET',
      headers: endToEndHeaders(req.headers, ['host']),
      upgrade: req.headers.upgrade ?? 'websocket',
    }, {
      onConnect(abort: (err?: Error) => void) {
        aborted = abort
      },
      onUpgrade(statusCode: number, rawHeaders: Buffer[], upstream: Duplex) {
        aborted = undefined
        socket.write(`${rawResponseHead(statusCode, STATUS_CODES[statusCode] ?? '', rawHeaders)}\r\n`)
        if (head.length > 0) upstream.write(head)
        splice(socket, upstream)
      },
      // The service refused the upgrade: its answer goes back to the app as it came.
      onHeaders(statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string) {
        const h = rawResponseHead(statusCode, statusText || STATUS_CODES[statusCode] || '', rawHeaders, ['connection', 'keep-alive'])
        answered = true
        socket.write(`${h}connection: close\r\n\r\n`)
        return true
      },
      onData(chunk: Buffer) {
        socket.write(chunk)
        return true
      },
      onComplete() {
        socket.end()
      },
      onError(err: Error) {
        if (answered) socket.destroy()
        else answerRaw(err)
      },
    } as unknown as Parameters<Mesh['dispatcher']['dispatch']>[1])
  }

  return {
    handler,
    upgrade,
    destroyUpgraded: () => {
      for (const s of upgraded) s.destroy()
    },
  }
}

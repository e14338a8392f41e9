// The gRPC front end of the inbound core: one grpc-js server interceptor, installed first on every
// server mesh.grpc.server() makes. When a call's metadata arrives it runs the server stack (deadline,
// shedding, identity, authz); a refused call gets its status from the error table and its handler
// never starts. An admitted call's handler callbacks run inside the request context, so outbound
// calls made by the handler carry its deadline, trace and caller chain. The final status (sent by
// the handler, or a cancel / the server's deadline timer, which only reach onCancel) ends the call.
import type { IncomingHttpHeaders } from 'node:http'
import type { Metadata, ServerInterceptor, StatusObject } from '@grpc/grpc-js'
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface.js'
import { LOAD_HEADER } from '../balance/endpoint-stats-layer.js'
import { httpStatusOfGrpc } from '../errors/grpc-status.js'
import { isWeftError, WeftError } from '../errors/index.js'
import type { PeerIdentity } from '../identity/peer.js'
import type { PeerCertificate } from 'node:tls'
import type { FrontEnd, InboundCall } from '../inbound/call.js'
import { requestContext } from '../inbound/context.js'
import type { InboundCore } from '../inbound/core.js'
import { RETRY_AFTER_S } from '../inbound/load-monitor.js'
import type { Done } from '../stack/layer.js'
import { TIMER_SLACK_MS } from '../resilience/deadline-watch.js'
import { ERROR_CODE_HEADER } from '../telemetry/call-layer.js'
import type { GrpcModule } from './load.js'
import { HEALTH_PATH_PREFIX } from './health.js'
import { headersOf } from './metadata.js'

const CANCELLED = 1
const DEADLINE_EXCEEDED = 4

interface GrpcIo {
  md: Metadata | undefined
  nextMd: ((md: Metadata) => void) | undefined
  /** The stack's done for an admitted call (told at the final status). */
  done: Done<InboundCall> | undefined
}

class GrpcFrontEnd implements FrontEnd {
  proceed(call: InboundCall, done: Done<InboundCall>): void {
    const io = call.io as GrpcIo
    io.done = done
    requestContext.run(call.context, io.nextMd!, io.md!)
  }
  // No closeAfter: HTTP/2 connections are drained by the server's shutdown (GOAWAY).
}

const frontEnd = new GrpcFrontEnd()

/**
 * The caller's checked identity from grpc-js's auth context: a PeerIdentity, why its certificate is
 * refused (a string), or undefined for a plaintext call.
 */
export type GrpcPeerCheck = (cert: PeerCertificate | undefined) => PeerIdentity | string

export function meshServerInterceptor(grpc: GrpcModule, coreOf: () => InboundCore, checkPeer?: GrpcPeerCheck): ServerInterceptor {
  /** The status of a call the server stack refused, from the error table. */
  const refusal = (err: Error, core: InboundCore): PartialStatusObject => {
    const md = new grpc.Metadata()
    md.set(LOAD_HEADER, core.monitor.header)
    if (isWeftError(err)) {
      md.set(ERROR_CODE_HEADER, err.code)
      if (err.code === 'WEFT_ERR_SERVER_OVERLOADED') md.set('grpc-retry-pushback-ms', String(RETRY_AFTER_S * 1000))
      return { code: err.grpcStatus, details: err.message, metadata: md }
    }
    return { code: 2, details: err.message, metadata: md }
  }

  return (methodDef, base) => {
    // The health service is answered before the stack, as /healthz and /readyz are (health.ts).
    if (methodDef.path.startsWith(HEALTH_PATH_PREFIX)) return new grpc.ServerInterceptingCall(base)
    const core = coreOf()
    const io: GrpcIo = { md: undefined, nextMd: undefined, done: undefined }
    let call: InboundCall | undefined
    let refused = false
    let ended = false
    let metadataSent = false
    let deadline = Infinity
    const end = (code: number): void => {
      if (ended) return
      ended = true
      if (!call) return
      call.grpcCode = code
      call.statusCode = httpStatusOfGrpc(code)
      io.done?.(null, call)
    }
    const self: InstanceType<GrpcModule['ServerInterceptingCall']> = new grpc.ServerInterceptingCall(base, {
      start(next) {
        next({
          onReceiveMetadata(md, nextMd) {
            io.md = md
            io.nextMd = nextMd
            const dl = base.getDeadline()
            deadline = dl instanceof Date ? dl.getTime() : dl
            // Over mTLS grpc-js verified the chain against the bundle; the SPIFFE checks are ours.
            const cert = checkPeer ? (base.getAuthContext?.()?.sslPeerCertificate as PeerCertificate | undefined) : undefined
            const peer = cert ? checkPeer!(cert) : undefined
            if (typeof peer === 'string') {
              refused = true
              ended = true
              self.sendStatus(refusal(new WeftError('WEFT_ERR_UNAUTHENTICATED', `${methodDef.path}: ${peer}`), core))
              return
            }
            // The local port the call came in on (AuthorizationPolicy to.ports), as for HTTP.
            const port = base.getConnectionInfo?.()?.localPort
            call = core.beginGrpc(methodDef.path, headersOf(md), deadline, frontEnd, io, peer, port ?? 0)
            core.runGrpc(call, (err) => {
              refused = true
              ended = true // the stack has its outcome already
              self.sendStatus(refusal(err, core))
            })
          },
          onReceiveMessage(msg, nextMsg) {
            if (!refused) requestContext.run(call!.context, nextMsg, msg)
          },
          onReceiveHalfClose(nextHalfClose) {
            if (!refused) requestContext.run(call!.context, nextHalfClose)
          },
          onCancel() {
            // A client cancel, or the server's own deadline timer (which answers DEADLINE_EXCEEDED
            // without passing through interceptors, then reports a cancel).
            // grpc-js's deadline timer runs on the loop's cached clock and can fire a few ms
            // before Date.now() reaches the deadline: allow for it.
            end(Date.now() >= deadline - TIMER_SLACK_MS ? DEADLINE_EXCEEDED : CANCELLED)
          },
        })
      },
      sendMetadata(md, next) {
        metadataSent = true
        md.set(LOAD_HEADER, core.monitor.header)
        next(md)
      },
      sendStatus(status, next) {
        end(status.code)
        if (!metadataSent && !refused) {
          // A trailers-only answer: the load report goes in the trailers.
          const md = status.metadata ?? new grpc.Metadata()
          md.set(LOAD_HEADER, core.monitor.header)
          return next({ ...status, metadata: md } as StatusObject)
        }
        next(status)
      },
    })
    return self
  }
}

// The gRPC terminal handler: one attempt of a call on the chosen endpoint's grpc-js channel. It
// answers the stack (done) when the attempt commits: on its first response message, or on its
// final status when no message came (a status-only answer, which the retry layer may replace).
// Response metadata is held until then, so a retried attempt leaves no trace with the caller.
import type { Metadata, StatusObject } from '@grpc/grpc-js'
import type { Call, InterceptingListener } from '@grpc/grpc-js/build/src/call-interface.js'
import type { Endpoint } from '../discovery/endpoint.js'
import { TIMER_SLACK_MS } from '../resilience/deadline-watch.js'
import type { HeaderRecord } from '../util/headers.js'
import { httpStatusOfGrpc } from '../errors/grpc-status.js'
import type { Abortable, CallBody, ClientDone, ClientHandler, OutboundCall, UpstreamResponse } from '../stack/call.js'
import { LOAD_HEADER } from '../balance/endpoint-stats-layer.js'
import { ERROR_CODE_HEADER } from '../telemetry/call-layer.js'
import { CALLER_HEADER } from '../inbound/context.js'
import type { EndpointChannels, EndpointConnection } from './endpoint-channels.js'

/** Where a committed attempt's response goes (the caller's gRPC call). */
export interface GrpcSink {
  onMetadata(md: Metadata): void
  onMessage(buf: Buffer): void
  onStatus(st: StatusObject): void
}

/** The caller's side of a call as the transport sees it: metadata, and the messages to send. */
export interface GrpcRequestSource {
  /** The request metadata of every attempt: the caller's plus `names` from the call's headers. */
  metadataFor(headers: HeaderRecord, names: readonly string[]): Metadata
  /** Makes `attempt` the one that receives the call's messages (replaying earlier ones). */
  attach(attempt: GrpcAttempt): void
}

/** Request metadata the mesh itself sets on every attempt (from the call's headers). */
const MESH_METADATA = ['traceparent', 'tracestate', CALLER_HEADER] as const
const NO_HEADERS: string[] = []
const CANCELLED = 1
const DEADLINE_EXCEEDED = 4
const UNAVAILABLE = 14
/** grpc-js's details for an HTTP/2 RST_STREAM(REFUSED_STREAM) (subchannel-call.js). */
const REFUSED_STREAM_DETAILS = 'Stream refused by server'

/** The two response headers layers read (load report, error code) as a flat name/value list. */
function meshHeaders(...mds: (Metadata | undefined)[]): string[] {
  let out: string[] | undefined
  for (const md of mds) {
    if (!md) continue
    for (const name of [LOAD_HEADER, ERROR_CODE_HEADER]) {
      const v = md.get(name)[0]
      if (v !== undefined) (out ??= []).push(name, String(v))
    }
  }
  return out ?? NO_HEADERS
}

export class GrpcAttempt implements UpstreamResponse, Abortable, InterceptingListener {
  statusCode = 0
  readonly statusText = ''
  /** weft-load / weft-error-code only; strings, which rawHeaderValue reads like Buffers. */
  rawHeaders = NO_HEADERS as unknown as Buffer[]
  /**
   * Undefined until the attempt settles; -1 when a message committed it (until the final status
   * comes, then that status); the status code of a status-only answer.
   */
  grpcCode: number | undefined = undefined
  private byMessage = false
  /** The final status, once it came. */
  status: StatusObject | undefined = undefined
  private held: Metadata | undefined = undefined
  private sink: GrpcSink | undefined = undefined
  private prefetched: Buffer | undefined = undefined
  private statusPending = false
  private reading = false
  private wantRead = false
  private settled = false
  private over = false
  private reason: Error | undefined = undefined
  /** The connection the wire call is on, until its final status (then it no longer counts there). */
  private conn: EndpointConnection | undefined
  /** Flow control is grpc-js's own (reads are asked for one at a time). */
  resume(): void {}

  constructor(
    private readonly call: OutboundCall,
    readonly endpoint: Endpoint,
    private readonly done: ClientDone,
    readonly wire: Call,
    conn: EndpointConnection | undefined,
    /** Starts the same attempt again on the endpoint's (current) channel. */
    private readonly restart?: () => void,
  ) {
    this.conn = conn
    call.abortAttempt = this
  }

  /**
   * gRPC's transparent retry (gRFC A6): a stream that never left this process, or that the server's
   * HTTP/2 layer refused before any application code saw it (REFUSED_STREAM: a connection closing
   * as a certificate renewal or a drain replaces it), is started again once, whatever the route's
   * retry policy and outside its budget — nothing was processed. grpc-js does this itself only
   * with its own retries, which are off on the mesh's endpoint channels.
   */
  private transparent(st: StatusObject): boolean {
    if (this.call.transparentRetried || this.call.aborted || this.held !== undefined || !(this.call.body as CallBody).replayable) return false
    // grpc-js marks these on its load-balancing call, but the mark does not reach a channel's
    // createCall listener: its text for an HTTP/2 REFUSED_STREAM is the stable signal there.
    const progress = (st as StatusObject & { progress?: string }).progress
    return progress === 'REFUSED' || progress === 'NOT_STARTED' || (st.code === UNAVAILABLE && st.details === REFUSED_STREAM_DETAILS)
  }

  /** True when the attempt no longer takes the call's messages (it ended, or a retry replaced it). */
  get closed(): boolean {
    return this.over || (this.settled && !this.byMessage)
  }

  // --- the wire call's listener ---
  onReceiveMetadata(md: Metadata): void {
    if (this.sink) this.sink.onMetadata(md)
    else this.held = md
  }

  onReceiveMessage(buf: Buffer): void {
    this.reading = false
    if (!this.settled) {
      this.settled = true
      this.byMessage = true
      this.grpcCode = -1
      this.statusCode = 200
      this.rawHeaders = meshHeaders(this.held) as unknown as Buffer[]
      this.prefetched = buf
      this.release()
      this.done(null, this)
      return
    }
    if (this.sink && this.wantRead) {
      this.wantRead = false
      this.sink.onMessage(buf)
    } else this.prefetched = buf
  }

  onReceiveStatus(st: StatusObject): void {
    this.status = st
    const conn = this.conn
    if (conn !== undefined) {
      this.conn = undefined
      conn.active--
      // A connection to an endpoint no config version has any more (a transparent restart after
      // the version removed it makes one) is closed with its last call: nothing else would.
      if (conn.active === 0 && this.endpoint.removed) conn.close()
    }
    if (!this.settled) {
      this.settled = true
      this.release()
      if (this.reason) return this.done(this.reason)
      if (this.restart && this.transparent(st)) {
        this.over = true
        this.call.transparentRetried = true
        return this.restart()
      }
      // grpc-js enforces the same deadline on the wire, with a timer on the loop's cached clock
      // that can fire a few ms early: say which limit it was, as the mesh would.
      if (st.code === DEADLINE_EXCEEDED && this.call.deadlineReason && performance.now() >= this.call.deadline - TIMER_SLACK_MS) return this.done(this.call.deadlineReason(this.call))
      this.grpcCode = st.code
      this.statusCode = httpStatusOfGrpc(st.code)
      this.rawHeaders = meshHeaders(this.held, st.metadata) as unknown as Buffer[]
      this.done(null, this)
      return
    }
    this.grpcCode = st.code
    this.rawHeaders = meshHeaders(this.held, st.metadata) as unknown as Buffer[]
    // An OK status waits behind the message read ahead; any other (a cancel, a deadline, a server
    // error) ends the call at once and drops that message, as grpc-js does. Held back, a cancel of
    // a caller that never reads again would never end the call.
    if (st.code !== 0) this.prefetched = undefined
    if (this.sink && this.prefetched === undefined) this.deliverStatus()
    else this.statusPending = true
  }

  // --- UpstreamResponse ---
  /** Hands the response to the caller's gRPC call. */
  pipeGrpc(sink: GrpcSink): void {
    this.sink = sink
    const held = this.held
    this.held = undefined
    if (held) sink.onMetadata(held)
    if (!this.byMessage) {
      // A status-only answer: nothing but the status to deliver.
      this.over = true
      sink.onStatus(this.status!)
    } else if (this.statusPending && this.prefetched === undefined) this.deliverStatus()
  }

  /** The caller asks for the next response message. */
  requestRead(): void {
    const sink = this.sink
    if (!sink || this.over) return
    const buf = this.prefetched
    if (buf !== undefined) {
      this.prefetched = undefined
      sink.onMessage(buf)
      if (this.statusPending) this.deliverStatus()
      return
    }
    if (this.statusPending) return this.deliverStatus()
    this.wantRead = true
    if (!this.reading) {
      this.reading = true
      this.wire.startRead()
    }
  }

  private deliverStatus(): void {
    if (this.over) return
    this.over = true
    this.statusPending = false
    this.sink!.onStatus(this.status!)
  }

  /** Only the gRPC front end (MeshClientCall) consumes a gRPC attempt, through pipeGrpc. */
  pipe(): void {
    throw new Error('weft: a gRPC attempt is handed over with pipeGrpc, not pipe')
  }

  discard(): void {
    if (this.over) return
    this.over = true
    this.sink = undefined
    this.wire.cancelWithStatus(CANCELLED, 'weft: attempt replaced by a retry')
  }

  /** The caller cancelled a committed call. */
  cancel(code: number, details: string): void {
    if (!this.over) this.wire.cancelWithStatus(code, details)
  }

  abort(err: Error): void {
    if (this.over || this.reason) return
    this.reason = err
    if (this.settled) {
      this.wire.cancelWithStatus(CANCELLED, err.message)
      return
    }
    this.settled = true
    this.over = true
    this.release()
    this.wire.cancelWithStatus(CANCELLED, err.message)
    this.done(err)
  }

  /** A later cancel of the call no longer reaches this attempt through call.abortAttempt. */
  private release(): void {
    if (this.call.abortAttempt === this) this.call.abortAttempt = null
  }

  /** First read: the attempt reads one message ahead to learn whether it committed. */
  begin(): void {
    this.reading = true
    this.wire.startRead()
  }
}

/** The terminal handler over per-endpoint channels (`channelsFor` makes and keeps them). */
export function makeGrpcTransport(channelsFor: (e: Endpoint, service: string) => EndpointChannels): ClientHandler {
  const start: ClientHandler = (call, done) => {
    if (call.aborted) return done(call.aborted)
    const source = call.body as unknown as GrpcRequestSource
    const endpoint = call.endpoint!
    // grpc-js takes deadlines on the Date.now() clock; the mesh keeps them on performance.now().
    const deadline = call.deadline === Infinity ? Infinity : Date.now() + (call.deadline - performance.now())
    // The least-loaded of the endpoint's connections (another is opened when all are full).
    const conn = channelsFor(endpoint, call.group.set.service).pick()
    const wire = conn.channel.createCall(call.path, deadline, undefined, null, null)
    conn.active++
    conn.started++
    const attempt = new GrpcAttempt(call, endpoint, done, wire, conn, call.transparentRetried ? undefined : () => start(call, done))
    wire.start(source.metadataFor(call.headers, MESH_METADATA), attempt)
    attempt.begin()
    source.attach(attempt)
  }
  return start
}

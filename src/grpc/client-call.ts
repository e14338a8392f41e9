// One gRPC call as the grpc-js client sees it: the Call that MeshChannel.createCall returns. It
// routes the call (service and method are the path), runs the rule's compiled client stack, and is
// the call's request source: it keeps the messages sent (serialized, up to the replay buffer) so a
// retry can send them again, and feeds the attempt in flight one write at a time (a grpc-js call
// takes one outstanding write). The committed attempt's response goes to the grpc-js listener.
import type { CallCredentials, Deadline, Metadata, StatusObject } from '@grpc/grpc-js'
import type { Call, InterceptingListener, MessageContext } from '@grpc/grpc-js/build/src/call-interface.js'
import type { ServerSurfaceCall } from '@grpc/grpc-js/build/src/server-call.js'
import { DEFAULTS } from '../config/defaults.js'
import type { Snapshot } from '../compile.js'
import { isWeftError, WeftError } from '../errors/index.js'
import { grpcStatusOfHttp } from '../errors/grpc-status.js'
import { CALLER_HEADER, requestContext } from '../inbound/context.js'
import { OutboundCall, type CallBody, type UpstreamResponse } from '../stack/call.js'
import { ERROR_CODE_HEADER } from '../telemetry/call-layer.js'
import type { HeaderRecord } from '../util/headers.js'
import { rawHeaderValue } from '../util/headers.js'
import type { GrpcModule } from './load.js'
import { headersOf } from './metadata.js'
import { GrpcAttempt, type GrpcRequestSource, type GrpcSink } from './transport.js'

export interface ClientCallDeps {
  grpc: GrpcModule
  snapshot(): Snapshot | undefined
  isClosed(): boolean
}

interface Item {
  buf: Buffer
  flags: number | undefined
  /** The caller's write callback (its flow control), called once the message is first written. */
  cb: ((err?: Error | null) => void) | undefined
}

const NO_OPTS: Readonly<Record<string, unknown>> = Object.freeze({})
// grpc-js Propagate flags (constants.ts): DEADLINE 1, CANCELLATION 8, DEFAULTS 0xffff.
const PROPAGATE_DEADLINE = 1
const PROPAGATE_CANCELLATION = 8
const PROPAGATE_DEFAULTS = 0xffff
const CANCELLED = 1
const UNAVAILABLE = 14
const INTERNAL = 13
/** gRFC A54: statuses a credentials plugin may not produce (they mean something the library does). */
const RESERVED_FOR_LIBRARY = new Set([3, 5, 6, 9, 10, 11, 15])
let callNumber = 0

export class MeshClientCall implements Call, CallBody, GrpcRequestSource, GrpcSink {
  metadata!: Metadata
  private listener!: InterceptingListener
  private call: OutboundCall | undefined
  /**
   * Messages sent while a retry could still replay them (made on the first message); null once
   * past the replay buffer or committed. Arrays are made lazily: a unary call needs few objects.
   */
  private log: Item[] | undefined | null = undefined
  private logBytes = 0
  /** Messages not yet written to the current attempt. */
  private queue: Item[] | undefined = undefined
  /** The message being written and the attempt it is written to (one write at a time). */
  private writing: Item | undefined = undefined
  private writingTo: GrpcAttempt | undefined = undefined
  /** Request metadata for attempts: the caller's plus the mesh's own, made once per call. */
  private attemptMd: Metadata | undefined = undefined
  private halfClosed = false
  private halfCloseSent = false
  private attempt: GrpcAttempt | undefined
  private attempts = 0
  private committed: GrpcAttempt | undefined
  private readPending = false
  private ended = false
  private starting = false
  private readonly number = ++callNumber

  constructor(
    private readonly deps: ClientCallDeps,
    private readonly service: string,
    private readonly path: string,
    private readonly deadline: Deadline,
    /** grpc-js's `parent` call option: its cancellation and deadline propagate (Propagate flags). */
    private readonly parentCall: ServerSurfaceCall | null = null,
    private readonly propagateFlags: number = PROPAGATE_DEFAULTS,
  ) {}

  // --- CallBody: the transport reads the call's messages through attach() ---
  get replayable(): boolean {
    return this.log !== null
  }

  forAttempt(): unknown {
    return this
  }

  // --- Call (grpc-js) ---
  start(metadata: Metadata, listener: InterceptingListener): void {
    this.metadata = metadata
    this.listener = listener
    if (this.early) {
      // Cancelled before it started (an async interceptor above us was still starting): no call runs.
      const st = this.early
      return void process.nextTick(() => listener.onReceiveStatus(st))
    }
    if (this.credentials) return this.runWithCredentials(this.credentials)
    this.starting = true
    try {
      this.run()
    } finally {
      this.starting = false
    }
  }

  /** Per-call credentials (CallOptions.credentials), set by grpc-js before start(). */
  private credentials: CallCredentials | undefined = undefined

  /**
   * Asks the call's credentials for their metadata once, then runs the call with it added (before
   * routing, so a Route may match on it). As grpc-js: a plugin's failure ends the call UNAVAILABLE,
   * or with the plugin's own status unless it is one gRFC A54 reserves for the library (INTERNAL).
   */
  private runWithCredentials(creds: CallCredentials): void {
    const slash = this.path.lastIndexOf('/')
    creds.generateMetadata({ service_url: `https://${this.service}/${this.path.slice(1, slash)}`, method_name: this.path.slice(slash + 1) }).then(
      (extra) => {
        if (this.ended) return
        const md = this.metadata.clone()
        md.merge(extra)
        this.metadata = md
        this.run()
      },
      (err: unknown) => {
        if (this.ended) return
        const e = err as { code?: unknown; message?: unknown } | null
        const own = typeof e?.code === 'number' && Number.isInteger(e.code) && e.code > 0 && e.code <= 16 ? e.code : undefined
        const code = own === undefined ? UNAVAILABLE : RESERVED_FOR_LIBRARY.has(own) ? INTERNAL : own
        this.end({ code, details: `Getting metadata from plugin failed with error: ${String(e?.message ?? err)}`, metadata: new this.deps.grpc.Metadata() })
      },
    )
  }

  /** A status given before start(): what start() answers with. */
  private early: StatusObject | undefined = undefined

  private run(): void {
    const snap = this.deps.snapshot()
    const svc = snap?.lookup(this.service)
    if (this.deps.isClosed()) return this.fail(new WeftError('WEFT_ERR_CLOSED', `mesh is closed; cannot call ${this.service}${this.path}`))
    if (!snap || !svc) {
      return this.fail(new WeftError('WEFT_ERR_NO_ENDPOINTS', `${this.service}${this.path}: "${this.service}" is not a service in the mesh config (version ${snap?.version ?? 0}); add a Service resource for it`, {
        details: { service: this.service, method: this.path, configVersion: snap?.version ?? 0 },
      }))
    }
    const headers = headersOf(this.metadata)
    const rule = snap.route(svc, { method: 'POST', pathname: this.path, search: '', headers })
    const call = new OutboundCall('POST', this.path, headers, this, NO_OPTS, rule.target)
    this.call = call
    const parent = requestContext.getStore()
    call.parent = parent
    headers[CALLER_HEADER] = parent ? parent.chain : rule.target.source
    // The earlier of the call's own deadline and the one of the request it is made for.
    const dl = +this.deadline
    if (Number.isFinite(dl)) call.deadline = call.startedAt + (dl - Date.now())
    if (parent !== undefined && parent.deadline < call.deadline) call.deadline = parent.deadline
    const pc = this.parentCall
    if (pc) {
      if (this.propagateFlags & PROPAGATE_DEADLINE) {
        const pd = +pc.getDeadline()
        if (Number.isFinite(pd) && call.startedAt + (pd - Date.now()) < call.deadline) call.deadline = call.startedAt + (pd - Date.now())
      }
      if (this.propagateFlags & PROPAGATE_CANCELLATION) {
        this.onParentCancel = () => this.cancelWithStatus(CANCELLED, 'Cancelled by parent call')
        pc.once('cancelled', this.onParentCancel)
      }
    }
    rule.grpcHandler()(call, (err, res) => {
      if (this.starting) process.nextTick(() => this.settle(err, res))
      else this.settle(err, res)
    })
  }

  private settle(err: Error | null, res: UpstreamResponse | undefined): void {
    const call = this.call!
    if (err || !res) return this.fail(err ?? new Error('weft: handler finished without a response'))
    if (res instanceof GrpcAttempt) {
      call.commit()
      this.committed = res
      this.log = null
      res.pipeGrpc(this)
      if (this.readPending) res.requestRead()
      return
    }
    // An answer the mesh made as HTTP (fault injection): its status maps by the gRPC spec.
    res.discard()
    call.finish(res, undefined)
    const code = grpcStatusOfHttp(res.statusCode)
    const md = new this.deps.grpc.Metadata()
    const errorCode = rawHeaderValue(res.rawHeaders, ERROR_CODE_HEADER)
    if (errorCode) md.set(ERROR_CODE_HEADER, errorCode)
    this.end({ code, details: `weft: ${res.statusCode} ${res.statusText}${errorCode ? ` (${errorCode})` : ''}`, metadata: md })
  }

  private fail(err: Error): void {
    this.call?.finish(undefined, err)
    const md = new this.deps.grpc.Metadata()
    if (isWeftError(err)) md.set(ERROR_CODE_HEADER, err.code)
    const st = { code: isWeftError(err) ? err.grpcStatus : 2, details: err.message, metadata: md }
    if (this.starting) process.nextTick(() => this.end(st))
    else this.end(st)
  }

  private onParentCancel: (() => void) | undefined = undefined

  private end(st: StatusObject): void {
    if (this.ended) return
    this.ended = true
    if (this.onParentCancel) this.parentCall!.removeListener('cancelled', this.onParentCancel)
    const queue = this.queue
    this.queue = undefined
    if (queue) for (const item of queue) item.cb?.()
    this.listener.onReceiveStatus(st)
  }

  // --- GrpcSink: the committed attempt's response ---
  onMetadata(md: Metadata): void {
    if (!this.ended) this.listener.onReceiveMetadata(md)
  }

  onMessage(buf: Buffer): void {
    this.readPending = false
    if (!this.ended) this.listener.onReceiveMessage(buf)
  }

  onStatus(st: StatusObject): void {
    this.call!.finish(this.committed, undefined)
    this.end(st)
  }

  // --- GrpcRequestSource: attempts take the messages from here ---
  attach(attempt: GrpcAttempt): void {
    this.attempt = attempt
    this.written = this.writeCallbackFor(attempt)
    this.writing = undefined
    this.halfCloseSent = false
    // A retry sends everything again, one write at a time.
    if (this.attempts++ > 0 && this.log) this.queue = [...this.log]
    this.pump()
  }

  /**
   * The metadata every attempt sends: a copy of the caller's (the caller may reuse its Metadata
   * object) with the mesh's headers set once per call, not per attempt.
   */
  metadataFor(headers: HeaderRecord, names: readonly string[]): Metadata {
    if (this.attemptMd) return this.attemptMd
    const md = this.metadata.clone()
    for (const name of names) {
      const v = headers[name]
      if (v !== undefined) md.set(name, Array.isArray(v) ? v.join(',') : v)
    }
    return (this.attemptMd = md)
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    const item: Item = { buf: message, flags: context.flags, cb: context.callback }
    if (this.ended) return void item.cb?.()
    if (this.log !== null) {
      this.logBytes += message.length
      // Past the buffer, the call can no longer be replayed: but only while an attempt is open.
      // Between attempts (a back-off) the message must reach the next one with everything before
      // it; the caller's withheld write callback bounds that to one message.
      if (this.logBytes > DEFAULTS.replayBufferBytes && this.attempt !== undefined && !this.attempt.closed) this.log = null
      else (this.log ??= []).push(item)
    }
    ;(this.queue ??= []).push(item)
    this.pump()
  }

  private pump(): void {
    const a = this.attempt
    if (!a || this.writing || a.closed) return
    const item = this.queue?.shift()
    if (!item) {
      if (this.halfClosed && !this.halfCloseSent) {
        this.halfCloseSent = true
        a.wire.halfClose()
      }
      return
    }
    this.writing = item
    this.writingTo = a
    a.wire.sendMessageWithContext({ flags: item.flags, callback: this.written! }, item.buf)
  }

  /** The write callback of the current attempt (one per attempt, not per write). */
  private written: ((err?: Error | null) => void) | undefined = undefined

  private writeCallbackFor(a: GrpcAttempt): (err?: Error | null) => void {
    return (err) => {
      const item = this.writing
      // A late callback of an attempt a retry replaced must not count for the current one.
      if (!item || a !== this.writingTo || a !== this.attempt) return
      this.writing = undefined
      const cb = item.cb
      item.cb = undefined
      cb?.(err)
      this.pump()
    }
  }

  halfClose(): void {
    this.halfClosed = true
    this.pump()
  }

  startRead(): void {
    if (this.committed) this.committed.requestRead()
    else this.readPending = true
  }

  cancelWithStatus(status: number, details: string): void {
    if (this.ended || this.early) return
    if (this.committed) return this.committed.cancel(status, details)
    if (!this.listener) {
      this.early = { code: status, details, metadata: new this.deps.grpc.Metadata() }
      return
    }
    if (!this.call) return this.end({ code: status, details, metadata: new this.deps.grpc.Metadata() })
    // The status reaches the caller on a later tick, never inside its own cancel() (as in grpc-js).
    this.starting = true
    try {
      this.call.cancel(new WeftError('WEFT_ERR_CANCELLED', `${this.service}${this.path}: ${details}`, { details: { service: this.service, method: this.path } }))
    } finally {
      this.starting = false
    }
  }

  getPeer(): string {
    return this.attempt?.wire.getPeer() ?? ''
  }

  getCallNumber(): number {
    return this.number
  }

  setCredentials(credentials: CallCredentials): void {
    this.credentials = credentials
  }

  getAuthContext(): null {
    return null
  }
}

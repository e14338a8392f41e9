// The instance side of the control protocol: register with a daemon, hold its watch stream (the
// stream is the lease), apply each pushed view through the caller's apply() and answer ACK or
// NACK. Reconnects with exponential backoff and full jitter, rotating through the daemon URLs;
// never throws into the data plane. See docs/design/control-plan.md.
//
// This file is the connection: registration, the stream, reconnects. What runs of each pushed
// view (policy and endpoints kept apart, resuming from the last version applied) is
// view-apply.ts; the ACKs, NACKs and heartbeats answering the daemon are ack-sender.ts (the
// daemon drops a silent instance); one plain call to the daemon is daemon-call.ts.
import type { ConnectionOptions } from 'node:tls'
import { request } from 'undici'
import { AckSender, type TrafficSource } from './ack-sender.js'
import { ControlTransport } from './control-transport.js'
import { callDaemon, Refused, refusal } from './daemon-call.js'
import type { Logger } from '../util/logger.js'
import { fullJitterDelay } from '../resilience/backoff.js'
import { NdjsonLines, parseWatchMessage } from './ndjson.js'
import { ViewApplier } from './view-apply.js'
import type { ControlView } from './views.js'
import type { BundleMessage, RegisterRequest, RegisterResponse, SvidResponse, WatchMessage } from './protocol.js'
import { CONTROL_PROTOCOL, PROTOCOL_HEADER } from './protocol.js'

export type { ControlView } from './views.js'

export interface ServingAddress {
  address: string
  port: number
  protocol: 'http' | 'grpc'
}

export interface ControlClientOptions {
  urls: string[]
  token: string
  /** Who this instance is; `id` stays the same across reconnects and daemon restarts. */
  registration: RegisterRequest & { id: string }
  logger: Logger
  /** Applies a view; resolves with undefined when applied, or the reason it was not (a NACK). */
  apply(view: ControlView): Promise<string | undefined>
  /** The watch stream opened (true) or was lost (false). */
  onConnected?(connected: boolean): void
  /** The daemon sent its trust bundle (first on every stream, again on rotation). */
  onBundle?(bundle: BundleMessage['bundle']): void
  backoff?: { baseMs: number; maxMs: number }
  /**
   * This instance's client TLS options for the daemon (its SVID, the bundle, and a check that the
   * server is the daemon's SPIFFE ID), or undefined while it has no certificate. With them every
   * call goes over mTLS to the same host and port, and the certificate replaces the instance token.
   */
  tls?: () => ConnectionOptions | undefined
  /** Timeout of the plain calls (register, ack, deregister). */
  requestTimeoutMs?: number
  /** What this instance keeps that the daemon dropped without deleting it: sent with each ACK/NACK. */
  kept?(): string[]
  /** Traffic totals that changed since the daemon last took them: sent with each heartbeat (`weft top`). */
  traffic?: TrafficSource
}

export class ControlClient {
  private readonly transport: ControlTransport
  /** Whether the open watch stream went over mTLS. */
  private streamSecure = false
  /** The stream is being reopened on the other transport (not a failure: no backoff). */
  private switching = false
  private readonly backoff: { baseMs: number; maxMs: number }
  private readonly timeoutMs: number
  private urlIndex = 0
  private failures = 0
  private instanceToken: string | undefined
  private leaseTtlMs = 10_000
  private serving: ServingAddress | undefined
  private stream: AbortController | undefined
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined
  private stopped = false
  /** Aborts register/ack calls in flight when the client closes (a blackholed daemon must not hold mesh.close). */
  private readonly stopping = new AbortController()
  private loopDone: Promise<void> | undefined
  /** What runs of the pushed views, and the ACK or NACK each gets. */
  private readonly views: ViewApplier
  /** ACKs, NACKs and heartbeats, one at a time; a failed ACK/NACK goes again with the next ping. */
  private readonly acks: AckSender
  private connected = false
  private lastError = ''
  private firstView: { promise: Promise<boolean>; resolve: (ok: boolean) => void }

  constructor(private readonly opts: ControlClientOptions) {
    this.backoff = opts.backoff ?? { baseMs: 200, maxMs: 10_000 }
    this.timeoutMs = opts.requestTimeoutMs ?? 3_000
    this.transport = new ControlTransport(opts.tls)
    this.views = new ViewApplier((view) => opts.apply(view), opts.logger)
    this.acks = new AckSender({
      post: (resource, body) => this.call('POST', `/v1/instances/${encodeURIComponent(this.id)}/${resource}`, this.instanceToken, body),
      canBeat: () => !!this.instanceToken && !this.stopped,
      logger: opts.logger,
      onBeatFailed: (err) => {
        if (!this.stopped) this.report(err)
      },
      ...(opts.kept ? { kept: opts.kept } : {}),
      ...(opts.traffic ? { traffic: opts.traffic } : {}),
    })
    let resolve!: (ok: boolean) => void
    const promise = new Promise<boolean>((r) => (resolve = r))
    this.firstView = { promise, resolve }
  }

  get id(): string {
    return this.opts.registration.id
  }

  /** The version this instance serves from the daemon (undefined before the first). */
  get version(): number | undefined {
    return this.views.applied?.version
  }

  get isConnected(): boolean {
    return this.connected
  }

  /**
   * This instance's certificate changed (the first one arrived, or it expired): a watch stream
   * opened in plaintext moves to mTLS now, so the token is no longer what keeps it.
   */
  identityChanged(): void {
    if (this.stream && !this.stream.signal.aborted && this.streamSecure !== this.transport.secure) {
      this.switching = true
      this.stream.abort()
    }
  }

  /** The daemon URL in use (or to be tried next). */
  get url(): string {
    return this.opts.urls[this.urlIndex % this.opts.urls.length]!
  }

  start(): void {
    this.loopDone ??= this.loop()
  }

  /** Resolves true once a first view is applied, false after `timeoutMs` without one. */
  waitForFirstView(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs)
      void this.firstView.promise.then((ok) => {
        clearTimeout(timer)
        resolve(ok)
      })
    })
  }

  /** The instance now serves at this address (mesh.listen): registered as an endpoint. */
  async setServing(addr: ServingAddress): Promise<void> {
    this.serving = addr
    // No registration yet: the next one carries it (and one in flight sends it when it resolves).
    if (!this.instanceToken) return
    await this.putServing(addr)
  }

  private async putServing(addr: ServingAddress): Promise<void> {
    try {
      await this.call('PUT', `/v1/instances/${encodeURIComponent(this.id)}`, this.instanceToken, addr)
    } catch (err) {
      // The next registration carries the address; the stream restarts to get there soon.
      this.opts.logger.warn(`control: could not update this instance's address (${(err as Error).message}); re-registering`)
      this.instanceToken = undefined
      this.stream?.abort()
    }
  }

  /**
   * Asks the daemon to sign this instance's CSR (its X509-SVID). Needs the registration (the
   * instance token authenticates the call; the daemon takes the identity from the registration).
   */
  async signSvid(csrPem: string): Promise<SvidResponse> {
    if (!this.instanceToken) throw new Error('not registered with the daemon yet')
    return (await this.call('POST', `/v1/instances/${encodeURIComponent(this.id)}/svid`, this.instanceToken, { csr: csrPem })) as SvidResponse
  }

  /** A JWT-SVID for this instance's identity and `audience` (ES256, at most 5 min). */
  async jwtSvid(audience: string | string[]): Promise<{ token: string; expiresAt: number }> {
    if (!this.instanceToken) throw new Error('not registered with the daemon yet')
    return (await this.call('POST', `/v1/instances/${encodeURIComponent(this.id)}/jwt-svid`, this.instanceToken, { audience })) as { token: string; expiresAt: number }
  }

  /** Stops watching and deregisters at once (bounded by the request timeout). */
  async close(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.firstView.resolve(false)
    this.stopping.abort()
    this.stream?.abort()
    this.wake()
    await this.loopDone
    if (this.instanceToken) {
      await this.call('DELETE', `/v1/instances/${encodeURIComponent(this.id)}`, this.instanceToken).catch((err: Error) => {
        this.opts.logger.warn(`control: deregistration failed (${err.message}); the daemon drops this instance when its lease ends`)
      })
    }
    await this.transport.close()
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let sawMessage = false
      try {
        if (!this.instanceToken) await this.register()
        sawMessage = await this.watch()
      } catch (err) {
        if (this.stopped) break
        if (err instanceof Refused && (err.status === 404 || err.status === 401) && this.instanceToken) {
          // The daemon no longer knows this registration (lease ended, daemon restarted with an
          // empty registry, another daemon): register again with the same id, at once.
          this.instanceToken = undefined
          continue
        }
        this.report(err as Error)
      }
      if (this.switching && !this.stopped) {
        // The stream was closed to reopen it over mTLS (identityChanged): same daemon, at once.
        this.switching = false
        continue
      }
      this.setConnected(false)
      if (this.stopped) break
      // A daemon that only offers a view older than this instance's is not progress: keep backing off.
      if (sawMessage && !this.views.refusedStale) this.failures = 0
      this.urlIndex++
      // Registered: try again well inside the lease, or a daemon that blipped (or restarted and
      // restored its registry for one TTL) lets the registration lapse while the instance waits,
      // and callers see its endpoint vanish. Unregistered: the configured ceiling.
      const ceiling = this.instanceToken ? Math.min(this.backoff.maxMs, Math.max(this.backoff.baseMs, this.leaseTtlMs / 2)) : this.backoff.maxMs
      await this.sleep(fullJitterDelay(++this.failures, this.backoff.baseMs, ceiling))
    }
    this.setConnected(false)
  }

  private async register(): Promise<void> {
    const sent = this.serving
    const body: RegisterRequest = { ...this.opts.registration, ...(sent ?? {}) }
    const res = (await this.call('POST', '/v1/register', this.opts.token, body)) as RegisterResponse
    this.instanceToken = res.token
    if (Number.isFinite(res.leaseTtlMs) && res.leaseTtlMs > 0) this.leaseTtlMs = res.leaseTtlMs
    // mesh.listen ran while the registration was in flight: its body did not carry the address.
    if (this.serving !== sent && this.serving !== undefined) {
      await this.putServing(this.serving)
      if (!this.instanceToken) throw new Error('could not send the serving address; registering again')
    }
  }

  /** Holds the watch stream until it ends; true when at least one message arrived. */
  private async watch(): Promise<boolean> {
    const ac = new AbortController()
    this.stream = ac
    this.switching = false
    try {
      return await this.watchOn(ac)
    } finally {
      if (this.stream === ac) this.stream = undefined
    }
  }

  private async watchOn(ac: AbortController): Promise<boolean> {
    // Resume from the last version applied, never a NACKed one (view-apply.ts).
    // bundle=1: the daemon sends its trust bundle first (and on rotation).
    const applied = this.views.resume()
    const since = applied ? `&version=${applied.version}` : ''
    const via = this.transport.route(this.url)
    this.streamSecure = via.secure
    const res = await request(`${via.base}/v1/instances/${encodeURIComponent(this.id)}/watch?bundle=1${since}`, {
      dispatcher: via.dispatcher,
      method: 'GET',
      headers: via.secure ? { [PROTOCOL_HEADER]: String(CONTROL_PROTOCOL) } : { [PROTOCOL_HEADER]: String(CONTROL_PROTOCOL), authorization: `Bearer ${this.instanceToken}` },
      signal: ac.signal,
      headersTimeout: this.timeoutMs,
      // Pings come every leaseTtl/3: a stream silent for a whole lease is dead.
      bodyTimeout: this.leaseTtlMs,
    })
    if (res.statusCode !== 200) throw await refusal(res)
    this.setConnected(true)
    // Say what this instance runs: a daemon that holds the same version sends nothing to ACK (and
    // may not know this instance's state: a new registration, another daemon).
    if (applied) this.acks.resume(applied.version)
    let saw = false
    const lines = new NdjsonLines()
    try {
      for await (const chunk of res.body) {
        for (const line of lines.push(chunk as Buffer)) {
          saw = true
          const msg = parseWatchMessage(line)
          if (!(await this.handle(msg))) {
            ac.abort()
            return saw
          }
        }
      }
    } catch (err) {
      if (this.stopped || ac.signal.aborted) return saw
      throw err
    }
    if (!this.stopped) this.report(new Error('watch stream ended'))
    return saw
  }

  /** Handles one message; false asks for a new stream (a delta that does not fit). */
  private async handle(msg: WatchMessage): Promise<boolean> {
    if (msg.type === 'ping') {
      this.acks.beat()
      return true
    }
    if (msg.type === 'bundle') {
      if (msg.bundle && typeof msg.bundle.sequence === 'number' && Array.isArray(msg.bundle.roots)) this.opts.onBundle?.(msg.bundle)
      return true
    }
    const ack = await this.views.offer(msg)
    if (ack === false) return false
    if (ack === undefined) return true
    if (ack.error === undefined) this.firstView.resolve(true)
    await this.acks.send(ack)
    return true
  }

  private async call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, token: string | undefined, body?: unknown): Promise<unknown> {
    const via = this.transport.route(this.url)
    // Over mTLS the certificate is the instance's credential; a join token (register) is still sent.
    const bearer = via.secure && token === this.instanceToken ? undefined : (token ?? '')
    // The deregistration itself runs after close() began: it has only its timeout.
    const signal = method === 'DELETE' ? undefined : this.stopping.signal
    return await callDaemon(via, { method, path, bearer, body, signal, timeoutMs: this.timeoutMs })
  }

  private setConnected(up: boolean): void {
    if (up === this.connected) return
    this.connected = up
    if (up) {
      this.opts.logger.info(`control: watching ${this.url} as ${this.id}`)
      this.lastError = ''
    }
    this.opts.onConnected?.(up)
  }

  /** Logs a control failure once per distinct message, so an outage is one line, not hundreds. */
  private report(err: Error): void {
    const msg = `control: ${this.url}: ${err.message}`
    if (msg === this.lastError) return
    this.lastError = msg
    this.opts.logger.warn(`${msg}; retrying with backoff`)
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined
        resolve()
      }, ms)
      this.sleeping = { timer, wake: resolve }
    })
  }

  private wake(): void {
    if (!this.sleeping) return
    clearTimeout(this.sleeping.timer)
    this.sleeping.wake()
    this.sleeping = undefined
  }
}

// A mesh in control mode: the ControlClient, the cached last good view, and the one rule of
// static stability at start — never fail because the daemon is down: after controlTimeoutMs with
// no first view applied, start from the cached one (stateDir), else from the mesh's own fallback
// (its static config, or nothing, for outbound calls; inbound refused until the daemon's policy
// applies), and keep reconnecting in the background. Every config change is
// applied one at a time, in arrival order. An inbound policy that vanishes from the daemon's view
// without a DELETE is kept, or with failOnDataErrors inbound fails closed (deletion-guard.ts).
import { randomBytes } from 'node:crypto'
import type { ConnectionOptions } from 'node:tls'
import { loadValue } from '../config/load.js'
import type { MeshPolicy } from '../config/types.js'
import { formatIssue, validatePolicy } from '../config/validate.js'
import type { Logger } from '../util/logger.js'
import { ControlClient, type ControlView, type ServingAddress } from './client.js'
import { composeView } from './compose.js'
import { DeletionGuard, keptMessage } from './deletion-guard.js'
import { StateCache } from './state-cache.js'
import type { TrafficReporter } from '../telemetry/traffic-report.js'

export interface ControlModeOptions {
  urls: string[]
  token: string
  service: string
  namespace: string
  labels?: Record<string, string>
  locality?: { region?: string; zone?: string }
  stateDir?: string
  timeoutMs: number
  logger: Logger
  /** weft_control_connected for this mesh. */
  connected: { set(v: number): void }
  /**
   * Compiles and swaps in a policy at the daemon's version (the mesh's apply); `inboundClosed`: inbound
   * requests are refused with that reason (failOnDataErrors and a dropped inbound policy).
   */
  apply(policy: MeshPolicy, version: number, inboundClosed?: string): Promise<void>
  /**
   * RELIABILITY F5: when the daemon's view drops an AuthorizationPolicy or RequestAuthentication
   * without deleting it, refuse inbound requests (503, not ready) instead of keeping it.
   */
  failOnDataErrors?: boolean
  /** The daemon's view dropped an inbound policy without deleting it (counted once per resource). */
  onDataError?(): void
  /** Whether some config is in use already, and whether the mesh is closed. */
  hasConfig(): boolean
  isClosed(): boolean
  /** Applies what the mesh serves with no daemon and no cache; resolves with what that is. */
  fallback(): Promise<string>
  /** The daemon's trust bundle arrived (the client signs CSRs for the identity layer). */
  onBundle?(bundle: unknown, client: ControlClient): void
  /** TLS options for the daemon once this instance has its certificate (ControlClientOptions.tls). */
  tls?: () => ConnectionOptions | undefined
  /** The config in use now came from the daemon (a view applied) or from the stateDir cache. */
  onSource?(source: 'daemon' | 'cache'): void
  /** A view of the daemon's was refused (NACK); the previous config keeps serving. */
  onRejected?(): void
  /** This mesh's traffic totals, reported with each heartbeat (`weft top`). */
  traffic?: TrafficReporter
}

export class ControlMode {
  readonly client: ControlClient
  private readonly cache: StateCache | undefined
  private applying: Promise<unknown> = Promise.resolve()
  private readonly guard = new DeletionGuard()

  private constructor(private readonly o: ControlModeOptions) {
    this.cache = o.stateDir ? new StateCache(o.stateDir, o.service, o.logger) : undefined
    o.connected.set(0)
    this.client = new ControlClient({
      urls: o.urls.map((u) => u.replace(/\/+$/, '')),
      token: o.token,
      registration: { id: `${o.service}-${randomBytes(6).toString('hex')}`, service: o.service, namespace: o.namespace, labels: { ...o.labels }, locality: o.locality },
      logger: o.logger,
      apply: (view) => this.applyView(view),
      onConnected: (up) => o.connected.set(up ? 1 : 0),
      onBundle: (bundle) => o.onBundle?.(bundle, this.client),
      // Reported with each ACK, so `weft status` shows an instance keeping a dropped policy.
      kept: () => this.guard.keptKeys(),
      ...(o.tls ? { tls: o.tls } : {}),
      ...(o.traffic ? { traffic: o.traffic } : {}),
    })
  }

  /** Registers and waits for the first view, or starts from the cache or the fallback. */
  static async start(o: ControlModeOptions): Promise<ControlMode> {
    const mode = new ControlMode(o)
    mode.client.start()
    if (!(await mode.client.waitForFirstView(o.timeoutMs))) await mode.serialized(() => mode.startWithoutDaemon())
    return mode
  }

  setServing(addr: ServingAddress): Promise<void> {
    return this.client.setServing(addr)
  }

  /** Deregisters at once and writes the pending cache. */
  async close(): Promise<void> {
    await this.client.close()
    await this.cache?.flush()
  }

  private async startWithoutDaemon(): Promise<void> {
    const { logger } = this.o
    if (this.o.hasConfig()) return // the first view arrived meanwhile
    const cached = this.cache?.read()
    if (cached) {
      const { error } = await this.compileView(cached)
      if (error === undefined) {
        this.o.onSource?.('cache')
        logger.warn(`no view from the control daemon applied within ${this.o.timeoutMs} ms (unreachable, or its view was rejected: see any NACK above); serving cached snapshot version ${cached.version} from ${this.cache!.file} (saved ${cached.savedAt})`)
        return
      }
      logger.error(`no view from the control daemon applied within ${this.o.timeoutMs} ms, and the cached snapshot ${this.cache!.file} does not apply:\n${error}`)
    }
    const what = await this.o.fallback()
    logger.warn(`no view from the control daemon applied within ${this.o.timeoutMs} ms (unreachable, or its view was rejected: see any NACK above) and no cached snapshot; serving ${what} until its policy applies`)
  }

  /** Applies a view pushed by the daemon; resolves with the NACK reason when it does not apply. */
  private applyView(view: ControlView): Promise<string | undefined> {
    return this.serialized(async () => {
      const { error, ran } = await this.compileView(view)
      if (ran !== undefined) {
        this.o.onSource?.('daemon')
        // What runs, kept resources included: a restart from the cache must not widen access either.
        void this.cache?.save(ran, this.client.url)
      } else this.o.onRejected?.()
      return error
    })
  }

  /** Applies a view (with the inbound policy it dropped without a delete); `ran`: what runs now. */
  private async compileView(view: ControlView): Promise<{ error: string; ran?: undefined } | { error?: undefined; ran: ControlView }> {
    if (this.o.isClosed()) return { error: 'mesh is closed' }
    const plan = this.guard.plan(view)
    const { resources } = composeView(plan.resources, view.endpoints, { fillRouteTargets: true, namespace: this.o.namespace })
    const policy = validatePolicy(loadValue(resources))
    const errors = policy.issues.filter((i) => i.severity === 'error')
    if (errors.length > 0) return { error: errors.map(formatIssue).join('\n') }
    const failClosed = this.o.failOnDataErrors === true && plan.kept.size > 0
    const dropped = [...plan.kept.keys()].join(', ')
    const closed = failClosed ? `the control daemon's view (version ${view.version}) dropped ${dropped} without deleting it; with failOnDataErrors inbound requests are refused until its view has it again or deletes it` : undefined
    try {
      await this.o.apply(policy, view.version, closed)
    } catch (err) {
      return { error: `compile failed: ${(err as Error).message}` }
    }
    const { newlyKept, released } = this.guard.commit(plan)
    for (const key of newlyKept) {
      this.o.logger.error(failClosed ? `${keptMessage(key, view.version)}; failOnDataErrors: refusing inbound requests (503, not ready) meanwhile` : keptMessage(key, view.version))
      this.o.onDataError?.()
    }
    for (const key of released) this.o.logger.info(`control: ${key} is in the daemon's view again or deleted on purpose (version ${view.version}); no longer kept`)
    return { ran: plan.kept.size === 0 ? view : { ...view, resources: plan.resources } }
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.applying.then(fn, fn)
    this.applying = run.catch(() => {})
    return run
  }
}

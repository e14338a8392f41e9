// The composition root and the mesh's lifecycle/API object: owns the config source (a file, an
// object or a control daemon), swaps in each compiled version, serves inbound, and exposes
// fetch/request/dispatcher/listen/grpc/metrics/close. Compiling a version and the per-service
// runtimes and pools it keeps across versions are in mesh-apply.ts (run per version, not per request).
import { EventEmitter } from 'node:events'
import { Agent, fetch as undiciFetch, request as undiciRequest, type Dispatcher } from 'undici'
import { Registry } from 'prom-client'
import { defaultClientStack, type ClientStack } from './client-stack.js'
import type { Snapshot } from './compile.js'
import { FileWatcher, readPolicy } from './config/source.js'
import type { MeshPolicy } from './config/types.js'
import { formatIssue } from './config/validate.js'
import { WeftError } from './errors/index.js'
import { MeshDispatcher } from './http/dispatcher.js'
import { endpointPool } from './http/endpoint-pool.js'
import { makeTransport } from './http/transport.js'
import { checkOptions, type MeshOptions } from './options.js'
import { MeshMetrics } from './telemetry/metrics.js'
import { TrafficReporter } from './telemetry/traffic-report.js'
import { consoleLogger, type Logger } from './util/logger.js'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { trace } from '@opentelemetry/api'
import { InboundCore } from './inbound/core.js'
import { closeServer, guardHeaderCount, listenWithMesh, sendHealth, type ListenOptions } from './http/server.js'
import { invalidArg } from './errors/index.js'
// Imports no grpc-js at load time: MeshGrpc requires @grpc/grpc-js when mesh.grpc is first used.
import { MeshGrpc } from './grpc/mesh-grpc.js'
import { ControlMode } from './control/control-mode.js'
import { MeshIdentity } from './mesh-identity.js'
import type { InboundSecurity } from './inbound/call.js'
import { attachFrontDoor } from './http/tls-front-door.js'
import { gateUpgrades } from './http/upgrade.js'
import { ConfigApplier, policyError } from './mesh-apply.js'
import { accessLogFromOption, type AccessLog } from './telemetry/access-log.js'

export type { ConfigEvent } from './mesh-apply.js'

const CONFIG_SOURCES = ['daemon', 'cache', 'static', 'none'] as const

/** URLs that need no normalization: scheme, plain host[:port], then a path without spaces or fragment. */
const SIMPLE_URL = /^https?:\/\/[a-z0-9.-]+(?::\d{1,5})?(?:\/[\x21-\x22\x24-\x7e]*)?$/

export class Mesh extends EventEmitter {
  readonly service: string
  readonly namespace: string
  readonly registry: Registry
  readonly dispatcher: Dispatcher
  /** The outbound layer stack; `mesh.stack.describe()` prints it. */
  readonly stack: ClientStack
  readonly logger: Logger
  private current: Snapshot | undefined
  private readonly meshMetrics: MeshMetrics
  private readonly passthrough: Agent
  /** mTLS: this instance's SVID (under a daemon), the modes, the TLS front door and connect plans. */
  readonly identity: MeshIdentity
  /** The access log, when MeshOptions.accessLog turned it on. */
  private readonly accessLog: AccessLog | undefined
  private readonly controlUrls: string[] | undefined
  private readonly transport = makeTransport((e, service) => (e.pool ??= endpointPool(e, service, (ep) => {
    const settings = this.current?.lookup(service)?.settings
    return settings ? this.identity.connectPlan(settings, ep) : { tls: false }
  })))
  /** Compiles each config version and keeps the per-service runtimes across versions (mesh-apply.ts). */
  private readonly applier: ConfigApplier
  private watcher: FileWatcher | undefined
  private isClosed = false
  private inboundCore: InboundCore | undefined
  private readonly servers = new Set<Server>()
  private adminServer: Server | undefined
  private onSignal: (() => void) | undefined
  private closing: Promise<void> | undefined
  private grpcApi: MeshGrpc | undefined
  /** What the identity and authz server layers enforce (compiled per version, before the swap). */
  private security: InboundSecurity
  private control: ControlMode | undefined
  /** Config comes from a control daemon (set before the first view arrives). */
  private underDaemon = false

  constructor(private readonly options: MeshOptions) {
    super()
    this.service = options.service
    this.namespace = options.namespace ?? 'default'
    this.registry = options.registry ?? new Registry()
    this.logger = options.logger ?? consoleLogger
    this.meshMetrics = new MeshMetrics(this.registry, this.service)
    this.stack = defaultClientStack(options.tracer)
    this.passthrough = new Agent()
    this.dispatcher = new MeshDispatcher({ snapshot: () => this.current, isClosed: () => this.isClosed }, this.passthrough)
    this.accessLog = accessLogFromOption(options.accessLog)
    const control = options.control ?? process.env.WEFT_CONTROL?.split(',').map((u) => u.trim()).filter(Boolean)
    this.controlUrls = control === undefined || control.length === 0 ? undefined : Array.isArray(control) ? control : [control]
    const m = this.meshMetrics
    this.security = { metrics: m, logger: this.logger }
    this.identity = new MeshIdentity({
      service: this.service, namespace: this.namespace, policy: () => this.current?.policy, controlled: this.controlUrls !== undefined, logger: this.logger,
      onRefused: (reason) => m.mtlsRefused.inc({ source_service: this.service, reason }),
      onCertificate: (notAfter) => m.certificateExpiry.set({ source_service: this.service }, notAfter === undefined ? 0 : notAfter / 1000),
      onCaExpiry: (notAfter) => m.caExpiry.set({ source_service: this.service }, notAfter === undefined ? 0 : notAfter / 1000),
    })
    this.applier = new ConfigApplier({
      service: this.service, namespace: this.namespace, options, logger: this.logger, metrics: m, stack: this.stack,
      terminal: this.transport, grpcTerminal: () => this.grpc.transport, underDaemon: () => this.underDaemon, accessLog: this.accessLog,
      install: (snapshot, security, version) => {
        this.current = snapshot
        this.security = security
        this.identity.policyApplied()
        this.inboundCore?.rebuild(version, undefined, security)
        this.grpcApi?.warm(snapshot)
      },
    })
    // A new certificate or bundle: mTLS pools are replaced (connections never outlive the
    // certificate they were made with), and a plaintext watch stream moves to mTLS.
    this.identity.onUpdate(() => {
      this.applier.dropMtlsPools()
      this.control?.client.identityChanged()
    })
    // A newly revoked identity (this one, or a destination's): pooled mTLS connections with it end.
    this.identity.onRevocationChange(() => this.applier.dropMtlsPoolsWhere((svc) => this.identity.outboundRevocation(svc) !== undefined))
  }

  /** The config version in use (0 before any config). */
  get configVersion(): number {
    return this.current?.version ?? 0
  }

  /** The compiled snapshot in use, for explain/debug output. */
  get snapshot(): Snapshot | undefined {
    return this.current
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** Loads the first config; a bad first config throws (there is nothing older to keep). */
  async start(): Promise<void> {
    if (this.controlUrls) await this.startControl(this.controlUrls)
    else await this.startStatic()
    const health = this.options.inbound?.health
    if (health && health.port !== undefined) await this.startAdmin(health.port, health.host, health.metrics !== false)
    if (this.options.handleSignals) {
      this.onSignal = () => {
        this.logger.info(`SIGTERM: draining ${this.service}`)
        void this.close().finally(() => process.exit(0))
      }
      process.once('SIGTERM', this.onSignal)
    }
  }

  private async startStatic(): Promise<void> {
    this.setConfigSource(this.options.config === undefined ? 'none' : 'static')
    await this.applyStaticConfig()
    if (typeof this.options.config === 'string') {
      this.watcher = new FileWatcher(this.options.config, () => void this.reload())
      this.watcher.start()
    }
  }

  /** The `config` option (a file, an object, or none) as the policy in force; refused whole when invalid. */
  private async applyStaticConfig(inboundClosed?: string): Promise<void> {
    const policy = readPolicy(this.options.config)
    const errors = policy.issues.filter((i) => i.severity === 'error')
    if (errors.length > 0) throw policyError(errors)
    await this.apply(policy, undefined, inboundClosed)
  }

  /** Control mode (src/control/control-mode.ts): register, watch, apply what the daemon pushes. */
  private async startControl(urls: string[]): Promise<void> {
    const token = this.options.token ?? process.env.WEFT_TOKEN
    if (!token) invalidArg('token', 'a join token is needed with control (the daemon prints one at first start and keeps it in its data dir as join.token; or set WEFT_TOKEN)')
    const o = this.options
    this.underDaemon = true
    await this.identity.load()
    this.control = await ControlMode.start({
      urls, token, service: this.service, namespace: this.namespace, labels: o.labels, locality: o.locality, stateDir: o.stateDir,
      timeoutMs: o.controlTimeoutMs ?? 3000, logger: this.logger,
      connected: this.meshMetrics.controlConnected.labels({ source_service: this.service }),
      apply: (policy, version, inboundClosed) => this.apply(policy, version, inboundClosed),
      failOnDataErrors: o.failOnDataErrors,
      onDataError: () => this.meshMetrics.configRejected.inc({ source_service: this.service, source: 'deletion' }),
      onBundle: (bundle, client) => this.identity.onDaemonBundle(bundle, client),
      // After its first certificate the instance talks to the daemon over mTLS only.
      tls: () => this.identity.controlTls(),
      hasConfig: () => this.current !== undefined,
      isClosed: () => this.isClosed,
      onSource: (source) => this.setConfigSource(source),
      onRejected: () => this.meshMetrics.configRejected.inc({ source_service: this.service, source: 'daemon' }),
      // Its RED totals go with each heartbeat, for `weft top` (read off the histograms, not the request path).
      traffic: new TrafficReporter(this.meshMetrics),
      // No view of the daemon's and no cached one: outbound calls use the static config (or pass
      // through), and inbound requests are refused (readiness false) until the daemon's policy
      // applies: a server is never open without the policy that may restrict it (RELIABILITY F2b, S7).
      fallback: async () => {
        this.setConfigSource(o.config === undefined ? 'none' : 'static')
        await this.applyStaticConfig('no policy from the control daemon yet (it did not answer, or its view was rejected, and there is no cached snapshot): inbound requests are refused until its policy applies')
        return `${o.config === undefined ? 'no policy (plain passthrough)' : 'the static config'} for outbound calls, and refusing inbound requests (not ready)`
      },
    })
    // Servers wait for this instance's first certificate (they fail closed until then; bounded).
    if (!(await this.identity.ready(o.controlTimeoutMs ?? 3000))) {
      this.logger.warn(`identity: no certificate from the daemon yet; mTLS servers refuse connections and calls to STRICT services fail until it arrives (retrying)`)
    }
    // A certificate that came during start (before this.control was set): the stream moves to mTLS.
    this.control.client.identityChanged()
  }

  /** The id this instance registered with at the control daemon (control mode only). */
  get instanceId(): string | undefined {
    return this.control?.client.id
  }

  /**
   * Registers this instance's serving address with the control daemon, for servers the mesh does
   * not start itself (Express's or Fastify's own listen). mesh.listen and mesh.grpc.listen call it.
   */
  async register(addr: { port: number; host?: string; protocol?: 'http' | 'grpc' }): Promise<void> {
    if (!this.control) return
    if (typeof addr !== 'object' || addr === null || !Number.isInteger(addr.port) || addr.port < 1 || addr.port > 65535) invalidArg('port', `must be an integer 1..65535 (got ${JSON.stringify(addr?.port)})`)
    if (addr.protocol !== undefined && addr.protocol !== 'http' && addr.protocol !== 'grpc') invalidArg('protocol', 'must be "http" or "grpc"')
    const host = addr.host === undefined || addr.host === '' || addr.host === '0.0.0.0' || addr.host === '::' ? (this.options.advertiseAddress ?? '127.0.0.1') : addr.host
    await this.control.setServing({ address: host, port: addr.port, protocol: addr.protocol ?? 'http' })
  }

  /**
   * The server side of the mesh, shared by mesh.listen and the Express/Fastify adapters. Made on
   * first use: a mesh that only calls out never samples its event loop.
   */
  get inbound(): InboundCore {
    if (!this.inboundCore) {
      this.inboundCore = new InboundCore({
        service: this.service,
        namespace: this.namespace,
        metrics: this.meshMetrics,
        logger: this.logger,
        tracer: this.options.tracer ?? trace.getTracer('weft'),
        options: this.options.inbound ?? {},
        ready: () => this.current !== undefined && !this.isClosed && this.security.closed === undefined,
        metricsText: () => this.metrics(),
        accessLog: this.accessLog?.inbound ? this.accessLog : undefined,
      })
      this.inboundCore.rebuild(this.configVersion, undefined, this.security)
    }
    return this.inboundCore
  }

  /**
   * gRPC on the mesh: `grpc.client(Ctor, 'ledger')`, `grpc.server()`, `grpc.listen(server, { port })`.
   * Loads @grpc/grpc-js (an optional peer dependency) on first use.
   */
  get grpc(): MeshGrpc {
    return (this.grpcApi ??= new MeshGrpc({ snapshot: () => this.current, isClosed: () => this.isClosed, inbound: () => this.inbound, identity: this.identity, onListen: (host, port) => void this.register({ host, port, protocol: 'grpc' }) }))
  }

  /**
   * Serves a node:http(s) server through the mesh: its request listeners run behind the inbound
   * stack (deadline, shedding, telemetry, identity, authz) and inside the request context. Resolves
   * once the server listens; the mesh is ready before that.
   */
  async listen(server: Server, opts: ListenOptions): Promise<AddressInfo> {
    if (this.isClosed) throw new WeftError('WEFT_ERR_CLOSED', 'mesh is closed; cannot listen')
    if (typeof server?.listen !== 'function' || typeof server.listeners !== 'function') invalidArg('server', 'must be a node:http or node:https Server')
    if (typeof opts !== 'object' || opts === null || !Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) invalidArg('port', `must be an integer 0..65535 (got ${JSON.stringify(opts?.port)})`)
    if (opts.host !== undefined && typeof opts.host !== 'string') invalidArg('host', 'must be a string')
    if (opts.route !== undefined && typeof opts.route !== 'function') invalidArg('route', 'must be a function (req) => route template')
    this.servers.add(server)
    this.frontDoor(server)
    const address = await listenWithMesh(this.inbound, server, opts)
    await this.register({ port: address.port, host: opts.host, protocol: 'http' })
    return address
  }

  /**
   * Puts the mesh's mTLS front door before a server the application listens itself (Express's
   * app.listen, Fastify's own server): by the instance's mode its connections are mTLS with a
   * checked client SVID, plaintext, or both. Call right after listen() returns (before the first
   * connection); mesh.listen and the Fastify plugin do it themselves. With or without a daemon it
   * also puts the request header-count limit (431 past 1000 fields, RELIABILITY B5) before the
   * server's request listeners, as they are when called, and runs upgrade (WebSocket) requests
   * through the inbound stack (http/upgrade.ts), whose framework middleware never sees them.
   * @example const server = app.listen(8080); mesh.secure(server); await mesh.register({ port: 8080 })
   */
  secure(server: Server): Server {
    this.frontDoor(server)
    guardHeaderCount(server)
    gateUpgrades(this.inbound, server)
    return server
  }

  private frontDoor(server: Server): void {
    if (this.identity.enabled) attachFrontDoor(server, this.identity.frontDoor)
  }

  private async startAdmin(port: number, host: string | undefined, withMetrics: boolean): Promise<void> {
    const admin = createServer((req, res) => {
      sendHealth(res, this.inbound.answerHealth(req.url ?? '/', withMetrics) ?? { status: 404, contentType: 'text/plain', body: 'not found\n' })
    })
    await new Promise<void>((resolve, reject) => {
      admin.once('error', reject)
      admin.listen(port, host ?? '127.0.0.1', () => resolve())
    })
    this.adminServer = admin
  }

  /** The admin server's address (health and metrics), when inbound.health.port is set. */
  get adminAddress(): AddressInfo | undefined {
    return this.adminServer?.address() as AddressInfo | undefined
  }

  /**
   * Re-reads the config (the file watcher calls this). A valid config becomes a new version; an
   * invalid one is logged and reported through the 'configError' event while the current version
   * keeps serving. Resolves with the version in use afterwards.
   */
  async reload(): Promise<number> {
    if (this.isClosed || this.underDaemon) return this.configVersion
    const policy = readPolicy(this.options.config)
    const errors = policy.issues.filter((i) => i.severity === 'error')
    if (errors.length > 0) {
      const err = policyError(errors)
      this.meshMetrics.configRejected.inc({ source_service: this.service, source: 'file' })
      this.logger.error(`config rejected; still serving version ${this.configVersion}\n${errors.map(formatIssue).join('\n')}`)
      this.emit('configError', err)
      return this.configVersion
    }
    await this.apply(policy)
    return this.configVersion
  }

  /** weft_config_source: 1 for where the config in use came from, 0 for the others. */
  private setConfigSource(source: 'daemon' | 'cache' | 'static' | 'none'): void {
    for (const s of CONFIG_SOURCES) this.meshMetrics.configSource.set({ source_service: this.service, source: s }, s === source ? 1 : 0)
  }

  /** Compiles and swaps in a policy; `version` is the daemon's (control mode) or the next local one. */
  private async apply(policy: MeshPolicy, version?: number, inboundClosed?: string): Promise<void> {
    this.emit('config', await this.applier.apply(policy, version, inboundClosed))
  }

  /** WHATWG fetch through the mesh. */
  fetch(input: string | URL, init?: Parameters<typeof undiciFetch>[1]): ReturnType<typeof undiciFetch> {
    return undiciFetch(input, { ...init, dispatcher: this.dispatcher })
  }

  /** undici.request through the mesh. */
  request(url: string | URL, opts?: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Dispatcher.HttpMethod }): Promise<Dispatcher.ResponseData<unknown>> {
    // Fast path for plain absolute URLs: undici.request would build a URL object (~5 µs).
    if (typeof url === 'string' && SIMPLE_URL.test(url)) {
      const slash = url.indexOf('/', url.indexOf('://') + 3)
      const origin = slash < 0 ? url : url.slice(0, slash)
      const path = slash < 0 ? '/' : url.slice(slash)
      // No options (the common GET): a literal of three fields instead of spreading undefined.
      if (opts === undefined) return this.dispatcher.request({ origin, path, method: 'GET' })
      return this.dispatcher.request({ ...opts, origin, path, method: opts.method ?? (opts.body ? 'PUT' : 'GET') } as Dispatcher.RequestOptions)
    }
    return undiciRequest(url, { ...opts, dispatcher: this.dispatcher } as Parameters<typeof undiciRequest>[1])
  }

  /** Prometheus text for this mesh's registry. */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }

  /** Stops watching, closes discovery and every connection pool (in-flight requests finish). */
  async close(): Promise<void> {
    return (this.closing ??= this.shutDown())
  }

  private async shutDown(): Promise<void> {
    // Deregister first, so callers stop picking this instance while it drains.
    await this.control?.close()
    // Inbound first: handlers still running may call out through the pools closed below.
    // A gRPC server that never saw a call has no inbound core yet (it is made on first use): its
    // server must still be shut down, or it keeps listening (and the process alive) after close.
    const core = this.inboundCore
    // The application's cue to end what only it can end cleanly: its WebSockets (1001 Going Away).
    this.emit('draining')
    const drained = core ? core.drain() : Promise.resolve(true)
    await Promise.all([drained, ...[...this.servers].map((s) => closeServer(s, drained)), this.grpcApi?.closeServers(drained)])
    core?.close()
    this.identity.close()
    this.isClosed = true
    if (this.onSignal) process.off('SIGTERM', this.onSignal)
    if (this.adminServer) await closeServer(this.adminServer, Promise.resolve())
    this.watcher?.stop()
    await Promise.all([this.applier.close(), this.passthrough.close().catch(() => {})])
  }
}

/**
 * Creates a mesh for this workload and loads its config.
 * @example
 *   const mesh = await createMesh({ service: 'checkout', config: './weft.yaml' })
 *   const res = await mesh.fetch('http://payments/charge', { method: 'POST', body })
 */
export async function createMesh(options: MeshOptions): Promise<Mesh> {
  const mesh = new Mesh(checkOptions(options))
  await mesh.start()
  return mesh
}

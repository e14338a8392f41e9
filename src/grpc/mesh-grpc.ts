// mesh.grpc: grpc-js clients and servers on the mesh. Made on first use, which is when
// @grpc/grpc-js is loaded (an optional peer dependency).
import type { ChannelCredentials, ClientOptions, Server, ServerOptions } from '@grpc/grpc-js'
import type { Snapshot } from '../compile.js'
import { DNS_NAME } from '../config/names.js'
import type { Endpoint } from '../discovery/endpoint.js'
import { invalidArg, WeftError } from '../errors/index.js'
import type { InboundCore } from '../inbound/core.js'
import { installHealth } from './health.js'
import type { ClientHandler } from '../stack/call.js'
import { loadGrpc, type GrpcModule } from './load.js'
import { MeshChannel } from './mesh-channel.js'
import { meshServerInterceptor } from './server.js'
import { makeGrpcTransport } from './transport.js'
import { GrpcIdentity } from './identity.js'
import { GrpcFrontDoor } from './front-door.js'
import { applyMaxMetadataSize, maxMetadataSize } from './server-limits.js'
import { endRevokedSessions } from './revoked-sessions.js'
import { DEFAULT_CONNECTION_LIMITS, EndpointChannels, mergeConnectionLimits, type ChannelMaker, type ConnectionLimits } from './endpoint-channels.js'
import type { MeshIdentity } from '../mesh-identity.js'

export interface GrpcListenOptions {
  port: number
  /** Interface to bind; default 0.0.0.0. */
  host?: string
}

export interface MeshGrpcDeps {
  snapshot(): Snapshot | undefined
  isClosed(): boolean
  inbound(): InboundCore
  /** A server started serving (the mesh registers it with the control daemon). */
  onListen?(host: string, port: number): void
  /** The mesh's identity: mTLS credentials for servers and endpoint channels. */
  identity: MeshIdentity
}

/** Endpoint channels: grpc-js must not retry or balance on its own; the mesh does both. */
const ENDPOINT_CHANNEL_OPTIONS = { 'grpc.enable_retries': 0 }
/**
 * An endpoint's channels beyond its first: each its own subchannel pool, or grpc-js would hand
 * them a connection already in use (its global pool shares a subchannel between channels of equal
 * target, options and credentials), the very connection they are there to relieve.
 */
const EXTRA_CHANNEL_OPTIONS = { ...ENDPOINT_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }

/** After the drain: how long the last statuses get to reach the wire before connections are cut. */
const STATUS_FLUSH_MS = 1000

type ClientConstructor<T> = new (address: string, credentials: ChannelCredentials, options?: ClientOptions) => T

export class MeshGrpc {
  readonly grpc: GrpcModule
  /** The terminal handler of gRPC client stacks. */
  readonly transport: ClientHandler
  private readonly meshed = new WeakSet<Server>()
  /** Services some gRPC client of this mesh calls: their endpoints' channels are kept warm. */
  private readonly called = new Set<string>()
  private readonly servers = new Set<Server>()
  /** The mesh's own listeners of servers under a daemon (front-door.ts). */
  private readonly doors = new Set<GrpcFrontDoor>()
  /** closeServers has begun: a listener bound after that is closed at once. */
  private closing = false
  private readonly identity: GrpcIdentity
  /** How calls are spread over connections to one endpoint (endpoint-channels.ts). */
  private readonly limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS }

  constructor(private readonly deps: MeshGrpcDeps) {
    this.grpc = loadGrpc()
    this.identity = new GrpcIdentity(this.grpc, deps.identity)
    this.transport = makeGrpcTransport((e, service) => this.channelsFor(e, service))
    // A newly revoked client identity: its open sessions on this mesh's servers end (RELIABILITY M8).
    deps.identity.onRevocationChange(() => {
      for (const s of this.servers) endRevokedSessions(s, (cert) => deps.identity.revokedCertificate(cert), (why, remote) => deps.identity.frontDoor.refused('revoked', `the client ${why}; its HTTP/2 session is drained`, remote))
    })
  }

  /**
   * Connections to each endpoint of a gRPC service (RELIABILITY L6): a call goes to the least-loaded
   * connection, and another connection is opened when each already carries `streamsPerConnection`
   * calls (default 100, the usual HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; set it to the servers'
   * own limit when lower, or calls beyond it queue behind long-lived streams). Up to
   * `maxPerEndpoint` (32) connections; one beyond the first is closed after `idleMs` (60 s) idle.
   * @example mesh.grpc.setConnectionLimits({ streamsPerConnection: 50 })
   */
  setConnectionLimits(limits: Partial<ConnectionLimits>): void {
    mergeConnectionLimits(this.limits, limits)
  }

  /** The endpoint's channels, made on first use; the first is asked to connect at once (kept warm). */
  private channelsFor(e: Endpoint, service: string): EndpointChannels {
    let set = e.grpcChannel as EndpointChannels | undefined
    if (!set || set.closed) {
      set = new EndpointChannels((extra) => this.makeChannel(e, service, extra), this.limits)
      e.grpcChannel = set
    }
    return set
  }

  /** One channel to the endpoint, with the endpoint's credentials (mTLS to mesh members). */
  private makeChannel(e: Endpoint, service: string, extra: boolean): ReturnType<ChannelMaker> {
    const settings = this.deps.snapshot()?.lookup(service)?.settings
    const { credentials, options, bind } = this.identity.channel(settings, e)
    const channel = new this.grpc.Channel(e.address, credentials, { ...(extra ? EXTRA_CHANNEL_OPTIONS : ENDPOINT_CHANNEL_OPTIONS), ...options })
    return { channel, bind }
  }

  /**
   * A grpc-js client of `service` whose calls go through the mesh: `Ctor` is a generated or
   * loadPackageDefinition client constructor. Every call is routed, balanced and retried by the
   * mesh; `client.close()` leaves the mesh's connections open.
   * @example const ledger = mesh.grpc.client(LedgerClient, 'ledger')
   */
  client<T>(Ctor: ClientConstructor<T>, service: string, options?: ClientOptions): T {
    if (typeof Ctor !== 'function') invalidArg('grpc.client(Ctor)', 'must be a grpc-js client constructor (from loadPackageDefinition or generated code)')
    if (typeof service !== 'string' || !DNS_NAME.test(service)) invalidArg('grpc.client(service)', `must be a service name (got ${JSON.stringify(service)})`)
    if (options !== undefined && (typeof options !== 'object' || options === null)) invalidArg('grpc.client(options)', 'must be an object of grpc-js client options')
    if (options?.channelOverride || options?.channelFactoryOverride) invalidArg('grpc.client(options)', 'channelOverride is the mesh\'s own; leave it out')
    const channel = new MeshChannel({ grpc: this.grpc, snapshot: this.deps.snapshot, isClosed: this.deps.isClosed }, service)
    this.called.add(service)
    const snap = this.deps.snapshot()
    if (snap) this.warm(snap)
    return new Ctor(`weft:${service}`, this.grpc.credentials.createInsecure(), { ...options, channelOverride: channel })
  }

  /**
   * Connects a channel to every endpoint of the services gRPC clients call (on a new client and on
   * every new config version), so no call waits for a connection: a first call that did once
   * measured ~25 ms here, which peak-EWMA then remembered for its whole decay window.
   */
  warm(snap: Snapshot): void {
    for (const service of this.called) {
      const svc = snap.lookup(service)
      if (svc) for (const e of svc.runtime.endpoints.list()) this.channelsFor(e, service).warm()
    }
  }

  /**
   * A grpc.Server whose handlers run behind the inbound stack (the mesh's interceptor goes first).
   * HTTP/2 limits (RELIABILITY B5, server-limits.ts): a call's header list (metadata) may be
   * 64 KiB at most — `'grpc.max_metadata_size'` (bytes; 0 for grpc-js's own: none) overrides it;
   * a Rapid Reset flood gets its connection closed by node's nghttp2 (≥ 20.8.1), and more than
   * ~120 metadata entries are refused by node:http2's default, both left as they are.
   * @example mesh.grpc.server({ 'grpc.max_metadata_size': 128 * 1024 })
   */
  server(options: ServerOptions = {}): Server {
    if (typeof options !== 'object' || options === null) invalidArg('grpc.server(options)', 'must be an object of grpc-js server options')
    const metadataLimit = maxMetadataSize(options)
    const id = this.deps.identity
    const interceptor = meshServerInterceptor(this.grpc, this.deps.inbound, id.enabled ? (cert) => id.peerFromCertificate(cert) : undefined)
    const server = new this.grpc.Server({ ...options, interceptors: [interceptor, ...(options.interceptors ?? [])] })
    applyMaxMetadataSize(server, metadataLimit)
    const core = this.deps.inbound()
    if (core.healthEnabled) installHealth(this.grpc, server, { serving: () => this.deps.inbound().serving(), onChange: (fn) => this.deps.inbound().onServingChange(fn) })
    this.meshed.add(server)
    return server
  }

  /**
   * Serves a server from mesh.grpc.server() on host:port; resolves with the port (0 picks a free
   * one). Under a daemon the port is the mesh's own listener (front-door.ts): each connection is
   * served as mTLS, plaintext or refused by the mTLS mode when it arrives.
   */
  async listen(server: Server, opts: GrpcListenOptions): Promise<{ port: number; address: string }> {
    if (this.deps.isClosed()) throw new WeftError('WEFT_ERR_CLOSED', 'mesh is closed; cannot listen')
    if (!this.meshed.has(server)) invalidArg('server', 'must come from mesh.grpc.server() (the mesh interceptor is installed when the server is made)')
    if (typeof opts !== 'object' || opts === null || !Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) invalidArg('port', `must be an integer 0..65535 (got ${JSON.stringify(opts?.port)})`)
    if (opts.host !== undefined && typeof opts.host !== 'string') invalidArg('host', 'must be a string')
    const host = opts.host ?? '0.0.0.0'
    const id = this.deps.identity
    let port: number
    if (id.enabled && typeof server.createConnectionInjector === 'function') {
      // Under a daemon: the mesh's own listener, which sorts each connection by the mode then.
      const door = new GrpcFrontDoor(server, this.identity.mtlsServerCredentials(), this.grpc.ServerCredentials.createInsecure(), {
        mode: () => id.serverMode(),
        hasCertificate: () => id.current() !== undefined,
        refused: (reason, detail, remote) => id.frontDoor.refused(reason, detail, remote),
        watchMode: (listener) => id.onPolicyApplied(listener),
      })
      port = await door.listen(opts.port, host)
      if (this.closing) {
        // mesh.close() began while the port was being bound: it would never close this one.
        door.stopAccepting()
        server.forceShutdown()
        await door.destroy()
        throw new WeftError('WEFT_ERR_CLOSED', 'mesh is closed; cannot listen')
      }
      this.doors.add(door)
    } else {
      // No daemon (plaintext, the mode never changes), or grpc-js < 1.11: grpc-js binds the port.
      const target = host.includes(':') ? `[${host}]:${opts.port}` : `${host}:${opts.port}`
      port = await new Promise<number>((resolve, reject) => {
        server.bindAsync(target, this.identity.boundServerCredentials(), (err, p) => (err ? reject(err) : resolve(p)))
      })
    }
    this.servers.add(server)
    this.deps.onListen?.(host, port)
    return { port, address: `${host}:${port}` }
  }

  /**
   * Drain: servers stop taking new calls (GOAWAY) and in-flight calls finish, until `drained`
   * settles (the inbound drain and its timeout); then whatever is left is cancelled.
   */
  async closeServers(drained: Promise<boolean>): Promise<void> {
    this.closing = true
    // The mesh's listeners stop taking connections at once (their ports are free); the connections
    // they handed to grpc-js are drained with the server's own.
    const doors = [...this.doors]
    this.doors.clear()
    for (const d of doors) d.stopAccepting()
    await Promise.all([...this.servers].map(async (s) => {
      const shut = new Promise<void>((resolve) => s.tryShutdown(() => resolve()))
      // The inbound drain settles when the last call's status is handed to grpc-js, a moment
      // before it is written: wait for the graceful shutdown a little longer, unless the drain
      // timed out.
      if (await drained) await Promise.race([shut, new Promise((resolve) => setTimeout(resolve, STATUS_FLUSH_MS).unref())])
      s.forceShutdown()
    }))
    this.servers.clear()
    await Promise.all(doors.map((d) => d.destroy()))
  }
}

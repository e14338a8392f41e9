// The composition root: owns the config source, compiles snapshots, holds per-service runtimes
// and connection pools, and exposes fetch/request/dispatcher/metrics/close.
import { EventEmitter } from 'node:events'
import { Agent, fetch as undiciFetch, request as undiciRequest, type Dispatcher } from 'undici'
import { Registry } from 'prom-client'
import { defaultClientStack, type ClientStack } from './client-stack.js'
import { compileSnapshot, type Snapshot } from './compile.js'
import { FileWatcher, readPolicy } from './config/source.js'
import type { ConfigIssue, MeshPolicy } from './config/types.js'
import { formatIssue } from './config/validate.js'
import type { Endpoint } from './discovery/endpoint.js'
import { WeftError } from './errors/index.js'
import { MeshDispatcher } from './http/dispatcher.js'
import { endpointPool } from './http/endpoint-pool.js'
import { makeTransport } from './http/transport.js'
import { checkOptions, type MeshOptions } from './options.js'
import type { ServiceRuntime } from './stack/service-runtime.js'
import { MeshMetrics, type TargetMetrics } from './telemetry/metrics.js'
import { consoleLogger, type Logger } from './util/logger.js'

/** URLs that need no normalization: scheme, plain host[:port], then a path without spaces or fragment. */
const SIMPLE_URL = /^https?:\/\/[a-z0-9.-]+(?::\d{1,5})?(?:\/[\x21-\x22\x24-\x7e]*)?$/

export interface ConfigEvent {
  version: number
  warnings: ConfigIssue[]
}

export class Mesh extends EventEmitter {
  readonly service: string
  readonly namespace: string
  readonly registry: Registry
  readonly dispatcher: Dispatcher
  /** The outbound layer stack; `mesh.stack.describe()` prints it. */
  readonly stack: ClientStack
  readonly logger: Logger
  private current: Snapshot | undefined
  private readonly runtimes = new Map<string, ServiceRuntime>()
  private readonly targetMetrics = new Map<string, TargetMetrics>()
  private readonly meshMetrics: MeshMetrics
  private readonly passthrough: Agent
  private readonly transport = makeTransport((e, service) => (e.pool ??= endpointPool(e, service)))
  private watcher: FileWatcher | undefined
  private version = 0
  private isClosed = false

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
    const policy = readPolicy(this.options.config)
    const errors = policy.issues.filter((i) => i.severity === 'error')
    if (errors.length > 0) throw policyError(errors)
    await this.apply(policy)
    if (typeof this.options.config === 'string') {
      this.watcher = new FileWatcher(this.options.config, () => void this.reload())
      this.watcher.start()
    }
  }

  /**
   * Re-reads the config (the file watcher calls this). A valid config becomes a new version; an
   * invalid one is logged and reported through the 'configError' event while the current version
   * keeps serving. Resolves with the version in use afterwards.
   */
  async reload(): Promise<number> {
    if (this.isClosed) return this.configVersion
    const policy = readPolicy(this.options.config)
    const errors = policy.issues.filter((i) => i.severity === 'error')
    if (errors.length > 0) {
      const err = policyError(errors)
      this.logger.error(`config rejected; still serving version ${this.configVersion}\n${errors.map(formatIssue).join('\n')}`)
      this.emit('configError', err)
      return this.configVersion
    }
    await this.apply(policy)
    return this.configVersion
  }

  private async apply(policy: MeshPolicy): Promise<void> {
    const version = ++this.version
    const { snapshot, ready } = compileSnapshot(policy, version, {
      source: this.service,
      runtimes: this.runtimes,
      ctx: {
        metrics: this.meshMetrics,
        logger: this.logger,
        zone: this.options.locality?.zone,
        dnsServers: this.options.dnsServers,
        onEndpointRemoved: (e) => closePool(e),
      },
      stack: this.stack,
      terminal: this.transport,
      metrics: this.meshMetrics,
      targetMetrics: this.targetMetrics,
    })
    await ready
    this.current = snapshot
    for (const [name, rt] of this.runtimes) {
      if (!policy.services.has(name)) {
        rt.close()
        this.runtimes.delete(name)
      }
    }
    this.meshMetrics.configVersion.set({ source_service: this.service }, version)
    const warnings = policy.issues.filter((i) => i.severity === 'warning')
    for (const w of warnings) this.logger.warn(formatIssue(w))
    this.emit('config', { version, warnings } satisfies ConfigEvent)
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
      return this.dispatcher.request({
        ...opts,
        origin: slash < 0 ? url : url.slice(0, slash),
        path: slash < 0 ? '/' : url.slice(slash),
        method: opts?.method ?? (opts?.body ? 'PUT' : 'GET'),
      } as Dispatcher.RequestOptions)
    }
    return undiciRequest(url, { ...opts, dispatcher: this.dispatcher } as Parameters<typeof undiciRequest>[1])
  }

  /** Prometheus text for this mesh's registry. */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }

  /** Stops watching, closes discovery and every connection pool (in-flight requests finish). */
  async close(): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    this.watcher?.stop()
    const pools: Promise<void>[] = []
    for (const rt of this.runtimes.values()) {
      for (const e of rt.endpoints.list()) if (e.pool) pools.push(e.pool.close().catch(() => {}))
      rt.close()
    }
    this.runtimes.clear()
    pools.push(this.passthrough.close().catch(() => {}))
    await Promise.all(pools)
  }
}

function closePool(e: Endpoint): void {
  const pool = e.pool
  e.pool = undefined
  if (pool) void pool.close().catch(() => {})
}

function policyError(errors: ConfigIssue[]): WeftError {
  return new WeftError('WEFT_ERR_POLICY_INVALID', `invalid config:\n${errors.map(formatIssue).join('\n')}`, { details: { issues: errors } })
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

// gRPC RED metrics: rpc_client_duration_seconds and rpc_server_duration_seconds (the OpenTelemetry
// RPC conventions in Prometheus form), per (rpc service, rpc method, gRPC status code, source,
// destination, error code). Registered on first gRPC use, so an HTTP-only mesh shows none.
// Method paths come from the service definitions (a grpc-js server runs interceptors only for
// registered methods; a client only calls its constructor's), so the label set stays bounded.
import { FastHistogram, type HistogramChild } from './fast-histogram.js'
import { DURATION_BUCKETS, type MeshMetrics } from './metrics.js'

const LABELS = ['rpc_service', 'rpc_method', 'rpc_grpc_status_code', 'source_service', 'destination_service', 'error_code']
const MAX_CHILDREN = 1024

export class RpcHistograms {
  readonly client: FastHistogram
  readonly server: FastHistogram

  constructor(m: MeshMetrics) {
    this.client = new FastHistogram({
      name: 'rpc_client_duration_seconds',
      help: 'Duration of outbound gRPC calls through the mesh, from start to the final status (streams included), all attempts.',
      labelNames: LABELS, buckets: DURATION_BUCKETS, registers: [m.registry],
    })
    this.server = new FastHistogram({
      name: 'rpc_server_duration_seconds',
      help: 'Duration of inbound gRPC calls served by this instance, from arrival to the final status (streams included).',
      labelNames: LABELS, buckets: DURATION_BUCKETS, registers: [m.registry],
    })
  }
}

/** "/pkg.Service/Method" → ["pkg.Service", "Method"]. */
export function splitRpcPath(path: string): [string, string] {
  const i = path.lastIndexOf('/')
  return i > 0 ? [path.slice(1, i), path.slice(i + 1)] : ['', path.slice(1)]
}

/** Children of one rpc histogram for a fixed (source, destination), with a last-label cache. */
export class RpcObserver {
  private readonly children = new Map<string, HistogramChild>()
  private lastPath = ''
  private lastCode = -1
  private lastError = ''
  private lastChild: HistogramChild | undefined

  constructor(
    private readonly histogram: FastHistogram,
    private readonly source: string,
    private readonly destination: string,
  ) {}

  observe(path: string, code: number, errorCode: string, seconds: number): void {
    if (code === this.lastCode && path === this.lastPath && errorCode === this.lastError) {
      this.lastChild!.observe(seconds)
      return
    }
    const key = `${path} ${code} ${errorCode}`
    let child = this.children.get(key)
    if (!child) {
      if (this.children.size >= MAX_CHILDREN) this.children.clear()
      const [service, method] = splitRpcPath(path)
      child = this.histogram.labels({
        rpc_service: service,
        rpc_method: method,
        rpc_grpc_status_code: String(code),
        source_service: this.source,
        destination_service: this.destination,
        error_code: errorCode,
      })
      this.children.set(key, child)
    }
    this.lastPath = path
    this.lastCode = code
    this.lastError = errorCode
    this.lastChild = child
    child.observe(seconds)
  }
}

/** A client target's rpc metrics (one per destination service, shared by its rules). */
export type RpcTargetMetrics = RpcObserver

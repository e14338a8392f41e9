// Access log: one JSON line per request, outbound (per logical call, as the application saw it) and
// inbound (per request served), written when the telemetry layers observe the outcome — the line an
// operator reads to learn what the mesh did with a request and, for a failure, which rule fired:
// the WEFT_ERR_* code, the route rule, the endpoint, attempts and why the last one was retried, the
// config version, the trace id to find its spans. Envoy's access log and Linkerd's tap are the
// models. Off by default: a request pays for it only when it is on (one check per request when off).
import { invalidArg } from '../errors/index.js'

export interface AccessLogOptions {
  /** Log outbound calls (default true). */
  outbound?: boolean
  /** Log inbound requests (default true). */
  inbound?: boolean
  /** Only failures: a mesh error, an HTTP 5xx, a gRPC status other than OK (default false). */
  errorsOnly?: boolean
  /** Where each line goes (without its newline); default: stdout. */
  write?: (line: string) => void
}

/** One line's fields, in the order they are written. */
export interface AccessLogEntry {
  time: string
  direction: 'outbound' | 'inbound'
  protocol: 'http' | 'grpc'
  method: string
  /** The path without its query (queries carry tokens and ids that do not belong in logs). */
  path: string
  /** HTTP status; for gRPC the HTTP status its final gRPC status maps to. */
  status: number
  grpc_status?: number
  /** WEFT_ERR_* of a mesh-generated failure (ours, or a Weft peer's weft-error-code); '' otherwise. */
  error_code: string
  /** The failure's message, for a mesh-generated one. */
  message?: string
  duration_ms: number
  source_service: string
  destination_service: string
  /** The route rule (outbound) or the route template (inbound). */
  route: string
  /** Outbound: the endpoint of the last attempt. */
  upstream?: string
  attempts?: number
  retry_reason?: string
  /** Inbound: the caller's verified SPIFFE ID (mTLS). */
  peer?: string
  trace_id: string
  request_id?: string
  config_version: number
}

const writeStdout = (line: string): void => void process.stdout.write(`${line}\n`)

export class AccessLog {
  readonly outbound: boolean
  readonly inbound: boolean
  private readonly errorsOnly: boolean
  private readonly write: (line: string) => void

  constructor(o: AccessLogOptions) {
    this.outbound = o.outbound ?? true
    this.inbound = o.inbound ?? true
    this.errorsOnly = o.errorsOnly ?? false
    this.write = o.write ?? writeStdout
  }

  /** Whether a request with this outcome is logged. */
  wants(status: number, errorCode: string, grpcStatus?: number): boolean {
    return !this.errorsOnly || errorCode !== '' || status >= 500 || (grpcStatus !== undefined && grpcStatus !== 0)
  }

  record(entry: AccessLogEntry): void {
    try {
      this.write(JSON.stringify(entry))
    } catch {
      // A sink that throws must not fail the request it logs.
    }
  }
}

/** The path part of a request target ("/a/b?x=1" → "/a/b"). */
export function pathOnly(path: string): string {
  const q = path.indexOf('?')
  return q < 0 ? path : path.slice(0, q)
}

/** MeshOptions.accessLog → an AccessLog, or undefined when off; throws WEFT_ERR_INVALID_ARG naming the field. */
export function accessLogFromOption(v: unknown): AccessLog | undefined {
  if (v === undefined || v === false) return undefined
  if (v === true) return new AccessLog({})
  if (typeof v !== 'object' || v === null) invalidArg('accessLog', 'must be true, false or { outbound?, inbound?, errorsOnly?, write? }')
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (!['outbound', 'inbound', 'errorsOnly', 'write'].includes(k)) invalidArg(`accessLog.${k}`, 'is not an option (outbound, inbound, errorsOnly, write)')
  for (const k of ['outbound', 'inbound', 'errorsOnly']) if (o[k] !== undefined && typeof o[k] !== 'boolean') invalidArg(`accessLog.${k}`, 'must be true or false')
  if (o.write !== undefined && typeof o.write !== 'function') invalidArg('accessLog.write', 'must be a function (line: string) => void')
  return new AccessLog(o as AccessLogOptions)
}

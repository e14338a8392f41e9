// Normalized, fully-defaulted config types: what compile() reads. Durations are milliseconds.

export type PathSeg = string | number

/** One validation finding; errors reject a config, warnings are reported and kept. */
export interface ConfigIssue {
  severity: 'error' | 'warning'
  /** Stable finding code, e.g. WEFT_E_FIELD_UNKNOWN or WEFT_W_ROUTE_SHADOWED. */
  code: string
  /** "Kind/name" of the resource. */
  resource: string
  /** Dotted field path inside the resource, e.g. spec.retries.attempts. */
  path: string
  message: string
  file?: string
  line?: number
  column?: number
}

export type LbPolicy = 'p2c-ewma' | 'round-robin' | 'least-request' | 'ring-hash'

export interface EndpointSpec {
  address: string
  host: string
  port: number
  labels: Record<string, string>
}

export interface DnsSpec {
  host?: string
  port?: number
  srv?: string
  servers?: string[]
  refreshMs: number
}

export interface RetrySettings {
  /** Retries after the first attempt (Istio semantics): attempts 2 → at most 3 tries. */
  attempts: number
  perTryTimeoutMs?: number
  retryOnConnectFailure: boolean
  retryOnReset: boolean
  retryOnTimeout: boolean
  /** HTTP statuses that are retried. */
  retryOnStatus: ReadonlySet<number>
  /** gRPC status codes that are retried (before the response is committed); default UNAVAILABLE. */
  retryOnGrpc: ReadonlySet<number>
  retryOn: string[]
  budget: { ratio: number; minPerSecond: number; ttlMs: number }
  backoff: { baseMs: number; maxMs: number }
  idempotencyKey: 'none' | 'auto'
}

export interface ServiceSettings {
  name: string
  namespace: string
  protocol: 'http' | 'grpc'
  endpoints: EndpointSpec[]
  dns?: DnsSpec
  loadBalancer: {
    policy: LbPolicy
    hashOn?: { header: string }
    ewmaDecayMs: number
    locality: { enabled: boolean; minHealthyPercent: number }
  }
  timeoutMs: number
  retries: RetrySettings
  circuitBreaker: { enabled: boolean; consecutiveFailures: number; halfOpenAfterMs: number }
  outlierDetection: {
    enabled: boolean
    consecutive5xx: number
    baseEjectionTimeMs: number
    maxEjectionTimeMs: number
    maxEjectionPercent: number
    panicThresholdPercent: number
  }
  concurrencyLimit: number
}

export interface StringMatch {
  exact?: string
  prefix?: string
  regex?: string
}

export interface MatchSpec {
  path?: StringMatch
  methods?: string[]
  headers?: Record<string, StringMatch>
  query?: Record<string, StringMatch>
  /** gRPC service ("pkg.Service") and/or method ("Get"), exact; compiled into a path match. */
  grpc?: { service?: string; method?: string }
}

export interface FaultSpec {
  delay?: { percent: number; fixedDelayMs: number }
  abort?: { percent: number; httpStatus: number }
}

export interface RuleSettings {
  /** Label value for metrics: the rule's name, or "<route>#<index>". */
  name: string
  index: number
  matches: MatchSpec[]
  backends: { subset: Record<string, string>; weight: number }[]
  timeoutMs?: number
  retries?: RetrySettings
  fault?: FaultSpec
}

export interface RouteSettings {
  name: string
  namespace: string
  service: string
  rules: RuleSettings[]
  /** Position in the loaded config: earlier routes are matched first. */
  order: number
}

export interface MeshSettings {
  trustDomain: string
  mtls: 'STRICT' | 'PERMISSIVE' | 'DISABLE'
}

/** The validated config: what one version of the config says. */
export interface MeshPolicy {
  services: Map<string, ServiceSettings>
  routes: RouteSettings[]
  mesh: MeshSettings
  issues: ConfigIssue[]
}

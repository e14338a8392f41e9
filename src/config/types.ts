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
  /**
   * The endpoint is a mesh member serving mTLS (registry endpoints of instances with an identity,
   * or `mtls: true` on a static endpoint). Other endpoints are outside the mesh: plaintext.
   */
  mtls?: boolean
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

/**
 * Traffic mirroring (shadowing), as Envoy's request_mirror_policies and Istio's `mirror`: a copy of
 * `percent` of the rule's HTTP calls goes to `service` (by default the route's own), to the
 * endpoints with the `subset` labels; its answer is dropped and never reaches the caller.
 */
export interface MirrorSpec {
  service: string
  subset: Record<string, string>
  percent: number
}

export interface RuleSettings {
  /** Label value for metrics: the rule's name, or "<route>#<index>". */
  name: string
  index: number
  matches: MatchSpec[]
  /** Weighted backends: a subset of the route's service, or of `service` when it names another. */
  backends: { service?: string; subset: Record<string, string>; weight: number }[]
  timeoutMs?: number
  retries?: RetrySettings
  fault?: FaultSpec
  mirror?: MirrorSpec
}

export interface RouteSettings {
  name: string
  namespace: string
  service: string
  rules: RuleSettings[]
  /** Position in the loaded config: earlier routes are matched first. */
  order: number
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE'

export interface MeshSettings {
  trustDomain: string
  /** The mesh-wide mode; PeerAuthentication overrides it per namespace or service. */
  mtls: MtlsMode
  /**
   * What an instance's authorization does for a service no ALLOW policy selects: ALLOW (Istio's
   * default) or DENY (the allow-nothing baseline). Default ALLOW.
   */
  defaultAuthorization: 'ALLOW' | 'DENY'
}

/** PeerAuthentication: the mTLS mode for one service (service set) or a whole namespace. */
export interface PeerAuthSettings {
  name: string
  namespace: string
  /** The service it applies to; undefined: every service in the namespace. */
  service?: string
  mtls: MtlsMode
}

// --- AuthorizationPolicy (src/authz compiles these; config/validate-authz.ts validates them) ---

/**
 * A string match in a policy: "exact", "prefix*", "*suffix" or "*" (Istio's forms). Kept as written;
 * src/authz compiles it.
 */
export type AuthzPattern = string

export interface AuthzSource {
  principals?: AuthzPattern[]
  notPrincipals?: AuthzPattern[]
  namespaces?: AuthzPattern[]
  notNamespaces?: AuthzPattern[]
  requestPrincipals?: AuthzPattern[]
  notRequestPrincipals?: AuthzPattern[]
}

export interface AuthzOperation {
  methods?: string[]
  notMethods?: string[]
  paths?: AuthzPattern[]
  notPaths?: AuthzPattern[]
  ports?: number[]
  notPorts?: number[]
}

export interface AuthzCondition {
  /** e.g. request.headers[x-tenant], request.auth.claims[scope], source.namespace. */
  key: string
  values?: AuthzPattern[]
  notValues?: AuthzPattern[]
}

export interface AuthzRule {
  /** Any entry matching is a match; empty/absent: any source. */
  from: AuthzSource[]
  /** Any entry matching is a match; empty/absent: any operation. */
  to: AuthzOperation[]
  /** Every condition must match. */
  when: AuthzCondition[]
}

export interface AuthorizationSettings {
  name: string
  namespace: string
  /** The service it selects; undefined: every service in the namespace. */
  service?: string
  action: 'ALLOW' | 'DENY' | 'AUDIT'
  /** No rules: matches nothing (an ALLOW with no rules is "allow nothing"). */
  rules: AuthzRule[]
  /** Position in the loaded config. */
  order: number
  /**
   * Match this policy's paths/notPaths ignoring ASCII case (for apps whose router is
   * case-insensitive, such as Express by default). Default false: paths are case-sensitive.
   */
  ignorePathCase?: boolean
}

// --- RequestAuthentication (src/identity/jwt verifies; config/validate-authn.ts validates) ---

export interface JwtRuleSettings {
  issuer: string
  /** Remote key set (fetched by the instance, cached); exactly one of jwksUri / jwks. */
  jwksUri?: string
  /** Inline key set ({ keys: [...] }). */
  jwks?: { keys: Record<string, unknown>[] }
  /** Required: the token's aud must contain one of these. */
  audiences: string[]
  /** Allowed JWS algorithms (never "none", never HS* with a key set). */
  algorithms: string[]
  /**
   * When set, the token's protected-header `typ` must be one of these (for example ["at+jwt"],
   * RFC 9068), compared ignoring case and an `application/` prefix (RFC 8725 §3.11). Undefined:
   * `typ` is not checked. As written (deduplicated); never empty.
   */
  tokenTypes?: string[]
  fromHeaders: { name: string; prefix: string }[]
  fromCookies: string[]
  fromParams: string[]
  /** exp/nbf/iat leeway. Default 30 s. */
  clockToleranceMs: number
}

export interface RequestAuthSettings {
  name: string
  namespace: string
  /** The service it applies to; undefined: every service in the namespace. */
  service?: string
  jwtRules: JwtRuleSettings[]
  order: number
}

/** The validated config: what one version of the config says. */
export interface MeshPolicy {
  services: Map<string, ServiceSettings>
  routes: RouteSettings[]
  mesh: MeshSettings
  peerAuthentication: PeerAuthSettings[]
  authorization: AuthorizationSettings[]
  requestAuthentication: RequestAuthSettings[]
  /** IdentityRevocation resources: identities no instance may talk mTLS with (RELIABILITY M8). */
  revocations: RevocationSettings[]
  issues: ConfigIssue[]
}

/**
 * IdentityRevocation: the emergency switch for one workload identity. metadata.namespace/name are
 * the revoked workload's namespace and service, so there is at most one per identity.
 */
export interface RevocationSettings {
  name: string
  namespace: string
  /** spiffe://<trust domain>/ns/<namespace>/sa/<name> */
  spiffeId: string
  reason: string
  /** ISO time the daemon stored it (absent in a hand-written resource). */
  revokedAt?: string
}

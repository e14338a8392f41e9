// The one table of mesh-generated failures: code → HTTP status, gRPC status, retryable, advice.
// Inbound responses, outbound errors, gRPC statuses and the docs (docs/errors.md) all read this.

/** gRPC status codes used by the table (numeric values from the gRPC spec). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const

export interface ErrorSpec {
  /** HTTP status a mesh-generated response carries for this failure. */
  readonly http: number
  /** gRPC status code a mesh-generated gRPC failure carries. */
  readonly grpc: number
  /** Whether another attempt (on another endpoint) may succeed. */
  readonly retryable: boolean
  /** What the user should do about it; printed in docs and `weft explain`. */
  readonly advice: string
}

export const ERROR_TABLE = {
  WEFT_ERR_INVALID_ARG: { http: 500, grpc: GrpcStatus.INVALID_ARGUMENT, retryable: false,
    advice: 'A Weft API was called with a bad option; the message names it. Fix the calling code.' },
  WEFT_ERR_POLICY_INVALID: { http: 500, grpc: GrpcStatus.FAILED_PRECONDITION, retryable: false,
    advice: 'A config resource failed validation; the message names the resource, field and line:column. The previous config keeps serving.' },
  WEFT_ERR_NO_ENDPOINTS: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: false,
    advice: 'The service (or the route backend subset) has no endpoints. Check endpoints, subset labels and discovery.' },
  WEFT_ERR_CONNECT_FAILED: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: true,
    advice: 'No connection could be made to the endpoint (refused, unreachable or timed out). Weft retries it elsewhere when the budget allows.' },
  WEFT_ERR_UPSTREAM_RESET: { http: 502, grpc: GrpcStatus.UNAVAILABLE, retryable: true,
    advice: 'The upstream closed the connection before a complete response. Retried only for idempotent requests.' },
  WEFT_ERR_UPSTREAM_TIMEOUT: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, retryable: true,
    advice: 'One attempt exceeded its per-try timeout (retries.perTryTimeout). Raise it or fix the slow endpoint.' },
  WEFT_ERR_DEADLINE_EXCEEDED: { http: 504, grpc: GrpcStatus.DEADLINE_EXCEEDED, retryable: false,
    advice: 'The request ran out of time (route/service timeout or a deadline propagated from the caller).' },
  WEFT_ERR_CIRCUIT_OPEN: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: false,
    advice: 'The circuit breaker for the service is open after consecutive failures; it probes again after halfOpenAfter.' },
  WEFT_ERR_RETRY_BUDGET_EXHAUSTED: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: false,
    advice: 'A retry was needed but the retry budget (ratio of requests + minimum per second) was spent: the upstream is failing broadly.' },
  WEFT_ERR_OVERLOADED: { http: 503, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retryable: false,
    advice: 'A concurrency limit was reached and the request failed fast. Raise concurrencyLimit or add capacity.' },
  WEFT_ERR_SERVER_OVERLOADED: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: true,
    advice: 'The server shed the request before its handler ran: its concurrency limit (inbound.maxConcurrent) or an event-loop threshold (inbound.shedding) was crossed. Nothing was processed, so callers retry on another instance whatever the method; add capacity or raise the threshold.' },
  WEFT_ERR_FAULT_INJECTED: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: false,
    advice: 'A Route rule injected this failure on purpose (spec.rules[].fault). Remove the fault to stop it.' },
  WEFT_ERR_CANCELLED: { http: 499, grpc: GrpcStatus.CANCELLED, retryable: false,
    advice: 'The caller aborted the request.' },
  WEFT_ERR_UNAUTHENTICATED: { http: 401, grpc: GrpcStatus.UNAUTHENTICATED, retryable: false,
    advice: 'The peer or the request carried no valid identity: a plaintext call to a STRICT mTLS server, a caller with no certificate yet, an identity revoked with `weft revoke` (the message names it and the reason; `weft unrevoke` lifts it), or an end-user JWT that failed verification (the message says which check failed).' },
  WEFT_ERR_TLS_HANDSHAKE: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: true,
    advice: 'The mTLS handshake with the endpoint failed: its certificate did not verify against the trust bundle, or its SPIFFE ID is not the one the destination service should have (the message names expected and presented IDs). Weft tries another endpoint; check the endpoint\'s identity and the trust bundle.' },
  WEFT_ERR_FORBIDDEN: { http: 403, grpc: GrpcStatus.PERMISSION_DENIED, retryable: false,
    advice: 'An AuthorizationPolicy denied the request; the message and details name the deciding policy (and rule). `weft explain` shows why. From the control daemon: the caller may not make this call (an admin call without the admin token, a CSR for another identity, or a certificate for a revoked identity: `weft revocations`).' },
  WEFT_ERR_CONTROL_UNAVAILABLE: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: true,
    advice: 'The control daemon could not be reached; the last good config keeps serving.' },
  WEFT_ERR_CLOSED: { http: 503, grpc: GrpcStatus.UNAVAILABLE, retryable: false,
    advice: 'The mesh was closed; no new requests are accepted.' },
  WEFT_ERR_NOT_FOUND: { http: 404, grpc: GrpcStatus.NOT_FOUND, retryable: false,
    advice: 'The control daemon has no such thing: an unknown path, policy resource, history version, or an instance id it does not know (expired, or the daemon restarted: register again).' },
  WEFT_ERR_CONFLICT: { http: 409, grpc: GrpcStatus.ABORTED, retryable: true,
    advice: 'The policy changed while this change was being made (another apply or another daemon won the race). Read the policy again and retry.' },
  WEFT_ERR_PAYLOAD_TOO_LARGE: { http: 413, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retryable: false,
    advice: 'The request body is over the control daemon\'s 1 MiB limit. Split the policy into several applies.' },
  WEFT_ERR_METHOD_NOT_ALLOWED: { http: 405, grpc: GrpcStatus.UNIMPLEMENTED, retryable: false,
    advice: 'The control daemon path exists but not with this HTTP method; the allow header lists the methods it takes.' },
  WEFT_ERR_RATE_LIMITED: { http: 429, grpc: GrpcStatus.RESOURCE_EXHAUSTED, retryable: true,
    advice: 'The control daemon refused the call because this caller made too many of them (certificate requests are limited per instance); retry after the retry-after header.' },
  WEFT_ERR_INTERNAL: { http: 500, grpc: GrpcStatus.INTERNAL, retryable: false,
    advice: 'The control daemon failed unexpectedly (for example its store could not be written); its log has the cause.' },
} as const satisfies Record<string, ErrorSpec>

export type WeftErrorCode = keyof typeof ERROR_TABLE

// gRPC status ↔ HTTP status. A gRPC outcome gets an HTTP-shaped status so the layers that judge
// responses by status (breaker, outlier detection, endpoint stats) work unchanged: only the
// server-side failures (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED)
// map to 5xx; application answers such as NOT_FOUND stay 4xx and never eject an endpoint.

/** gRPC code → HTTP status (the grpc-gateway mapping). */
const TO_HTTP = [
  200, // OK
  499, // CANCELLED
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  400, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
] as const

export function httpStatusOfGrpc(code: number): number {
  return TO_HTTP[code] ?? 500
}

/** HTTP status → gRPC code, for a response the mesh made as HTTP (fault injection): the gRPC spec's mapping. */
export function grpcStatusOfHttp(status: number): number {
  if (status >= 200 && status < 300) return 0
  switch (status) {
    case 400: return 13 // INTERNAL
    case 401: return 16 // UNAUTHENTICATED
    case 403: return 7 // PERMISSION_DENIED
    case 404: return 12 // UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return 14 // UNAVAILABLE
    default: return 2 // UNKNOWN
  }
}

/** Status names for metrics labels and messages (index = code). */
export const GRPC_STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
  'UNAUTHENTICATED',
] as const

export function grpcStatusName(code: number): string {
  return GRPC_STATUS_NAMES[code] ?? String(code)
}

/** The lower-case, dashed status names used in retryOn and as retry reason labels ("unavailable"). */
export const GRPC_STATUS_WORDS: readonly string[] = GRPC_STATUS_NAMES.map((n) => n.toLowerCase().replace(/_/g, '-'))

// The default outbound (client) stack, outermost first. The order is a reviewed decision: a test
// pins it, and each layer says why it sits where it does (see describe()).
import { balanceLayer } from './balance/balance-layer.js'
import { endpointStatsLayer } from './balance/endpoint-stats-layer.js'
import { outboundIdentityLayer } from './identity/outbound-layer.js'
import { attemptTimeoutLayer } from './resilience/attempt-timeout-layer.js'
import { circuitLayer } from './resilience/breaker-layer.js'
import { deadlineLayer } from './resilience/deadline-layer.js'
import { limitLayer } from './resilience/limit-layer.js'
import { retryLayer } from './resilience/retry-layer.js'
import { faultLayer } from './routing/fault-layer.js'
import { mirrorLayer } from './routing/mirror-layer.js'
import type { OutboundCall, UpstreamResponse } from './stack/call.js'
import { Stack } from './stack/stack.js'
import type { RouteTarget } from './stack/target.js'
import { callTelemetryLayer } from './telemetry/call-layer.js'
import { traceLayer } from './telemetry/trace-layer.js'
import type { Tracer } from '@opentelemetry/api'

export type ClientStack = Stack<OutboundCall, UpstreamResponse, RouteTarget>

export function defaultClientStack(tracer?: Tracer): ClientStack {
  return new Stack([
    callTelemetryLayer, // per call
    traceLayer(tracer), // per call
    deadlineLayer, // per call
    faultLayer, // per call
    mirrorLayer, // per call: a copy to the rule's mirror, if it has one
    limitLayer, // per call
    circuitLayer, // per call: judges the service by what callers get after retries
    retryLayer, // per call → attempts below
    balanceLayer, // per attempt
    endpointStatsLayer, // per attempt
    attemptTimeoutLayer, // per attempt
    outboundIdentityLayer, // per attempt
  ])
}

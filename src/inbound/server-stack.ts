// The default inbound (server) stack, outermost first; a test pins the order.
import { Stack } from '../stack/stack.js'
import type { InboundCall, InboundTarget, ServerHandler } from './call.js'
import { serverDeadlineLayer } from './deadline-layer.js'
import { authzLayer, inboundIdentityLayer } from './hook-layers.js'
import { shedLayer } from './shed-layer.js'
import { serverTelemetryLayer } from './telemetry-layer.js'

export type ServerStack = Stack<InboundCall, InboundCall, InboundTarget>

export function defaultServerStack(): ServerStack {
  return new Stack([serverTelemetryLayer, serverDeadlineLayer, shedLayer, inboundIdentityLayer, authzLayer])
}

/** The terminal: hands the call to its front end, which runs the application. */
export const runApplication: ServerHandler = (call, done) => call.frontEnd.proceed(call, done)

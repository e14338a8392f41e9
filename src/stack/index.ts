export { Stack } from './stack.js'
export { runHandler, type Layer, type Handler, type Done } from './layer.js'
export { OutboundCall, type UpstreamResponse, type BodySink, type CallBody, type ClientLayer, type ClientHandler } from './call.js'
export type { RouteTarget, BackendTarget } from './target.js'

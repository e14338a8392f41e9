export { Stack } from './stack.js'
export type { Layer, Handler } from './layer.js'
export { OutboundCall, type UpstreamResponse, type BodySink, type CallBody, type ClientLayer, type ClientHandler } from './call.js'
export type { RouteTarget, BackendTarget } from './target.js'

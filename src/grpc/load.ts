// @grpc/grpc-js, loaded on first use of mesh.grpc (an optional peer dependency).
import { requireOptionalPeer } from '../util/optional-peer.js'

export type GrpcModule = typeof import('@grpc/grpc-js')

export function loadGrpc(): GrpcModule {
  return requireOptionalPeer<GrpcModule>('@grpc/grpc-js', 'mesh.grpc needs @grpc/grpc-js: install it next to weft (npm install @grpc/grpc-js)')
}

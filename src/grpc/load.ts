// Loads @grpc/grpc-js on first use of mesh.grpc. It is an optional peer dependency: `import 'weft'`
// must work without it, so nothing imports it at module load. require() keeps mesh.grpc synchronous
// and resolves the application's own copy (grpc-js is CommonJS), so the Metadata and Server classes
// the mesh makes are the ones the application's clients and handlers use.
import { createRequire } from 'node:module'
import { WeftError } from '../errors/index.js'

export type GrpcModule = typeof import('@grpc/grpc-js')

let cached: GrpcModule | undefined

export function loadGrpc(): GrpcModule {
  if (cached) return cached
  const require = createRequire(import.meta.url)
  try {
    cached = require('@grpc/grpc-js') as GrpcModule
  } catch (err) {
    throw new WeftError('WEFT_ERR_INVALID_ARG', 'mesh.grpc needs @grpc/grpc-js: install it next to weft (npm install @grpc/grpc-js)', { cause: err })
  }
  return cached
}

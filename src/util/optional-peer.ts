// Loads an optional peer dependency on first use (@grpc/grpc-js for mesh.grpc, etcd3 for the
// daemon's etcd store): `import 'weft'` must work without them, so nothing imports them at module
// load. require() keeps the callers synchronous and resolves the application's own copy (both are
// CommonJS), so the classes the mesh makes are the ones the application's code uses.
import { createRequire } from 'node:module'
import { WeftError } from '../errors/index.js'

const loaded = new Map<string, unknown>()

/** The module, or WEFT_ERR_INVALID_ARG with `missing` (what to install, and what needs it). */
export function requireOptionalPeer<T>(name: string, missing: string): T {
  if (loaded.has(name)) return loaded.get(name) as T
  const require = createRequire(import.meta.url)
  let mod: T
  try {
    mod = require(name) as T
  } catch (err) {
    throw new WeftError('WEFT_ERR_INVALID_ARG', missing, { cause: err })
  }
  loaded.set(name, mod)
  return mod
}

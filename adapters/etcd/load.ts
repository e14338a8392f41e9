// Loads etcd3 on first use of the etcd store. It is an optional peer dependency: weft (and the
// CLI without --etcd) must load without it, so nothing imports it at module load. require()
// resolves the application's own copy (etcd3 is CommonJS).
import { createRequire } from 'node:module'
import { WeftError } from '../../src/errors/index.js'

export type Etcd3Module = typeof import('etcd3')

let cached: Etcd3Module | undefined

export function loadEtcd3(): Etcd3Module {
  if (cached) return cached
  const require = createRequire(import.meta.url)
  try {
    cached = require('etcd3') as Etcd3Module
  } catch (err) {
    throw new WeftError('WEFT_ERR_INVALID_ARG', 'install etcd3 next to weft to use --etcd (npm install etcd3)', { cause: err })
  }
  return cached
}

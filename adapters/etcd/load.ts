// etcd3, loaded on first use of the etcd store (an optional peer dependency): weft, and the CLI
// without --etcd, load without it.
import { requireOptionalPeer } from '../../src/util/optional-peer.js'

export type Etcd3Module = typeof import('etcd3')

export function loadEtcd3(): Etcd3Module {
  return requireOptionalPeer<Etcd3Module>('etcd3', 'install etcd3 next to weft to use --etcd (npm install etcd3)')
}

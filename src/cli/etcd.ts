// The etcd store for `weft daemon --etcd`. adapters/ sits above cli/ in the layering
// (ARCHITECTURE §2), so this one file is the only place the CLI reaches into it, and only through
// a dynamic import when --etcd is given: etcd3 is an optional peer dependency, loaded never else.
import type { Store } from '../daemon/store.js'
import type { Logger } from '../util/logger.js'
import { CliError } from './args.js'

export async function createEtcdStoreForCli(opts: { endpoints: string[]; leaseTtlMs?: number; logger: Logger }): Promise<Store> {
  try {
    const { createEtcdStore } = await import('../../adapters/etcd/etcd-store.js')
    return createEtcdStore(opts)
  } catch (err) {
    throw new CliError(`weft daemon: cannot use --etcd: ${(err as Error).message}`)
  }
}

// The identity documents on etcd (keys.ts: <prefix>ca/…), so daemons sharing one etcd are one CA
// and one JWT issuer. Creation is a transaction on create revision 0, as for the admin token, so of
// daemons starting together on an empty etcd one writes and the others adopt what it wrote; a
// change is a transaction on the mod revision the writer last saw, so of two concurrent rotations
// one wins. Each watch is on its one key, apart from the store's prefix watch, which reports only
// policy and registry changes.
import type { Etcd3, IKeyValue, Watcher } from 'etcd3'
import type { SharedDoc, SharedDocName, SharedDocVersion } from '../../src/daemon/store.js'
import type { Logger } from '../../src/util/logger.js'
import type { Keys } from './keys.js'
import { bounded, sleep } from './timing.js'


export class EtcdSharedDocs {
  private readonly watchers = new Set<Watcher>()
  private closed = false

  /** `client` throws unless the store is open. */
  constructor(private readonly client: () => Etcd3, private readonly keys: Keys, private readonly logger: Logger) {}

  doc(name: SharedDocName): SharedDoc {
    const key = this.keys.shared(name)
    return {
      get: async () => {
        const kv = (await this.client().get(key).exec()).kvs[0]
        return kv ? versionOf(kv) : undefined
      },
      createIfAbsent: async (value) => {
        const c = this.client()
        const res = await c.if(key, 'Create', '==', 0).then(c.put(key).value(value)).else(c.get(key)).commit()
        if (res.succeeded) return { value, revision: Number(res.header.revision), created: true }
        const kv = res.responses[0]?.response_range?.kvs[0]
        if (!kv) throw new Error(`etcd store: ${key} exists and is gone again; start the daemon again`)
        return { ...versionOf(kv), created: false }
      },
      compareAndSet: async (value, revision) => {
        const c = this.client()
        const res = await c.if(key, 'Mod', '==', revision).then(c.put(key).value(value)).else(c.get(key)).commit()
        if (res.succeeded) return Number(res.header.revision)
        const kv = res.responses[0]?.response_range?.kvs[0]
        // A request retried after its response was lost finds its own write (every value written
        // holds something new: a root, a sequence).
        if (kv && kv.value.toString() === value) return Number(kv.mod_revision)
        return undefined
      },
      watch: (after, listener) => this.watch(key, after, listener),
    }
  }

  async close(): Promise<void> {
    this.closed = true
    const all = [...this.watchers]
    this.watchers.clear()
    await Promise.allSettled(all.map((w) => bounded(w.cancel(), 1000)))
  }

  private async watch(key: string, after: number, listener: (doc: SharedDocVersion) => void): Promise<void> {
    let last = after
    const deliver = (doc: SharedDocVersion) => {
      if (doc.revision <= last) return
      last = doc.revision
      try {
        listener(doc)
      } catch (err) {
        this.logger.error(`etcd store: listener of ${key} failed: ${(err as Error).message}`)
      }
    }
    const start = async (): Promise<void> => {
      const w = await this.client().watch().key(key).startRevision(String(last + 1)).create()
      if (this.closed) {
        await bounded(w.cancel(), 1000).catch(() => {})
        return
      }
      this.watchers.add(w)
      w.on('put', (kv: IKeyValue) => deliver(versionOf(kv)))
      w.on('delete', () => this.logger.warn(`etcd store: ${key} was deleted; the daemons keep what they hold, but one started now would make a new one (restore the key, or restart every daemon)`))
      // Canceled by etcd (it cannot replay from `last`, e.g. after a compaction): read the key, then watch on from there.
      w.on('error', (err: Error) => {
        if (!this.watchers.delete(w) || this.closed) return
        this.logger.warn(`etcd store: watch of ${key} canceled (${err.message}); reading it again`)
        void restart()
      })
    }
    const restart = async () => {
      for (let delay = 250; !this.closed; delay = Math.min(delay * 2, 5000)) {
        try {
          const kv = (await this.client().get(key).exec()).kvs[0]
          if (kv) deliver(versionOf(kv))
          await start()
          return
        } catch (err) {
          this.logger.warn(`etcd store: cannot watch ${key} (${(err as Error).message}); retrying`)
          await sleep(delay)
        }
      }
    }
    await start()
  }
}

function versionOf(kv: IKeyValue): SharedDocVersion {
  return { value: kv.value.toString(), revision: Number(kv.mod_revision) }
}

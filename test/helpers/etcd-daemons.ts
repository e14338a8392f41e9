// Daemons sharing one real etcd for the etcd tests: each in a data dir of its own, on a fresh key
// prefix, all closed (and their dirs removed) after the test.
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { createEtcdStore } from '../../adapters/etcd/etcd-store.js'
import { startDaemon, type Daemon, type DaemonOptions } from '../../src/daemon/index.js'
import { silentLogger } from '../../src/util/logger.js'

/** A key prefix no other test uses. */
export const newEtcdPrefix = (): string => `/t-${randomUUID().slice(0, 8)}/`

/** `n` fresh data dirs named after `label`. */
export const dataDirs = (n: number, label: string): string[] => Array.from({ length: n }, () => mkdtempSync(join(tmpdir(), `weft-${label}-`)))

/** Starts daemons in `dir`s on the etcd at `endpoint` under `prefix`; closes them and removes `dirs` after the test. */
export function etcdDaemonStarter(t: TestContext, endpoint: string, prefix: string, dirs: string[], extra: Partial<DaemonOptions> = {}) {
  const started: Daemon[] = []
  t.after(async () => {
    await Promise.allSettled(started.map((d) => d.close()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  return async (dir: string, more: Partial<DaemonOptions> = extra): Promise<Daemon> => {
    const d = await startDaemon({
      listen: '127.0.0.1:0', dataDir: dir, logger: silentLogger, print: () => {}, leaseTtlMs: 3000, ...more,
      store: createEtcdStore({ endpoints: [endpoint], prefix, leaseTtlMs: 3000 }),
    })
    started.push(d)
    return d
  }
}

// The demo's control daemon: `weft daemon` on the embedded store, in this process, on 127.0.0.1:0
// with a fresh data dir that is removed at the end. Every service registers with it; the demo
// applies policy through its admin API (what `weft apply` does) and prints `weft status` and `weft top`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { statusTable, type StatusView } from '../../src/cli/status.js'
import { explain, type Explanation } from '../../src/cli/explain-model.js'
import { topTable } from '../../src/cli/top.js'
import type { TopView } from '../../src/daemon/traffic-board.js'
import type { EndpointMap } from '../../src/control/protocol.js'
import { startDaemon, type Daemon } from '../../src/daemon/index.js'
import type { Logger } from '../../src/index.js'

export interface DemoDaemon {
  url: string
  dataDir: string
  /** The join token every service registers with. */
  joinToken: string
  /** Applies resources (POST /v1/policy, like `weft apply`); resolves with the new version. */
  apply(resources: object[]): Promise<number>
  /** `weft status` as text. */
  status(): Promise<string>
  /**
   * `weft top --once` as text: the traffic the instances reported with their heartbeats, once
   * `instances` of them have reported (or after 3 s: the last heartbeats may still be on their way).
   */
  top(instances: number): Promise<string>
  /** `weft explain --from FROM URL -X METHOD`, as the CLI computes it from the daemon's view. */
  explain(from: string, url: string, method: string): Promise<Explanation>
  close(): Promise<void>
}

export async function startDemoDaemon(logger: Logger): Promise<DemoDaemon> {
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-demo-daemon-'))
  let daemon: Daemon
  try {
    // The first-start secrets go nowhere: the demo reads them back from the data dir.
    // A 4.5 s lease: pings, and so the heartbeats that carry each instance's traffic for `weft top`,
    // every 1.5 s (the default 10 s lease makes them 3.3 s apart, a third of a short demo).
    daemon = await startDaemon({ listen: '127.0.0.1:0', dataDir, logger, print: () => {}, leaseTtlMs: 4_500 })
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true })
    throw err
  }
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim()
  const joinToken = readFileSync(join(dataDir, 'join.token'), 'utf8').trim()
  const admin = async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    const res = await request(`${daemon.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
    const text = await res.body.text()
    if (res.statusCode >= 300) throw new Error(`daemon: ${method} ${path} answered ${res.statusCode}: ${text}`)
    return JSON.parse(text) as T
  }
  let closing: Promise<void> | undefined
  return {
    url: daemon.url,
    dataDir,
    joinToken,
    apply: async (resources) => (await admin<{ version: number }>('POST', '/v1/policy', resources)).version,
    explain: async (from, url, method) => {
      const snap = await admin<{ version: number; resources: object[]; endpoints: EndpointMap }>('GET', `/v1/snapshot?service=${from}`)
      return explain(snap, { from, url, method, headers: [] })
    },
    status: async () => {
      const st = await admin<{ version: number; instances: StatusView[] }>('GET', '/v1/status')
      return statusTable(st.version, st.instances)
    },
    top: async (instances) => {
      const until = Date.now() + 3_000
      let view = await admin<TopView>('GET', '/v1/top?window=60')
      while (view.instances < instances && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 200))
        view = await admin<TopView>('GET', '/v1/top?window=60')
      }
      return topTable(view)
    },
    close: () => (closing ??= daemon.close().finally(() => rmSync(dataDir, { recursive: true, force: true }))),
  }
}

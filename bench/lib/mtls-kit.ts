// Shared by the mTLS benches (mtls-client.ts, tls-handshake.ts): in the main process a control
// daemon (the CA) and the TLS upstream, each in a child process; in the arm processes the clients —
// a raw undici Pool with a client SVID and Weft's TLS settings, or a mesh under the daemon.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createSecureContext, type SecureContext } from 'node:tls'
import { Pool, request } from 'undici'
import type * as Weft from '../../src/index.js'
import { forkTs, nextMessage, stopDaemonHost, type Send } from './load.js'
import { contextOptions, issueSvid, spiffeServerCheck, type Svid } from './svid.js'

const lib = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const silent = { info() {}, warn() {}, error() {} }

/** The destination's service and the SPIFFE ID its server certificate must carry. */
export const SERVER_SERVICE = 'payments'
/** The calling service: the mesh's `service`, and the raw clients' SVID. */
export const CLIENT_SERVICE = 'checkout'
export const PATH = '/charge'

export interface UpstreamPorts {
  keepalive: number
  close: number
  plain: number
  plainClose: number
}

export interface TlsStats {
  /** Server CPU so far (user + system), µs. */
  cpuMicros: number
  /** TLS handshakes completed so far, and how many of them resumed a session. */
  handshakes: number
  resumed: number
  /** Handshakes the server refused (tlsClientError). */
  errors: number
  firstError?: string
}

export interface Bench {
  dataDir: string
  controlUrl: string
  joinToken: string
  ports: UpstreamPorts
  /** The upstream's CPU and handshake counters now. */
  stats(): Promise<TlsStats>
  /** Applies policy YAML through the daemon's admin API. */
  applyPolicy(yaml: string): Promise<void>
  stop(): Promise<void>
}

/**
 * A control daemon (lib/daemon-host.ts, a fresh data dir, so a fresh CA) and the TLS upstream
 * (lib/tls-upstream.ts), each in a child process.
 */
export async function startBench(): Promise<Bench> {
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-mtls-'))
  const daemon = forkTs(lib('./daemon-host.ts'), [dataDir])
  const controlUrl = await nextMessage(daemon, 30_000, (m) => (m as { url?: string }).url)
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim()
  const joinToken = readFileSync(join(dataDir, 'join.token'), 'utf8').trim()
  const upstream = forkTs(lib('./tls-upstream.ts'), ['--data-dir', dataDir])
  const ports = await nextMessage(upstream, 30_000, (m) => (m as { ports?: UpstreamPorts }).ports)
  return {
    dataDir,
    controlUrl,
    joinToken,
    ports,
    stats: async () => {
      const answer = nextMessage(upstream, 10_000, (m) => (m as { cpu?: NodeJS.CpuUsage }).cpu ? (m as { cpu: NodeJS.CpuUsage; tls: Omit<TlsStats, 'cpuMicros'> }) : undefined)
      upstream.send('stats')
      const r = await answer
      return { cpuMicros: r.cpu.user + r.cpu.system, ...r.tls }
    },
    applyPolicy: async (yaml) => {
      const res = await request(`${controlUrl}/v1/policy`, { method: 'POST', body: yaml, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/yaml' } })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`POST /v1/policy: ${res.statusCode} ${text}`)
    },
    stop: async () => {
      upstream.kill('SIGTERM')
      await stopDaemonHost(daemon)
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** The Service the mesh arms call: one static endpoint marked as a mesh member (`mtls: true`). */
export function servicePolicy(port: number): string {
  return `apiVersion: weft/v1
kind: Service
metadata: { name: ${SERVER_SERVICE} }
spec:
  endpoints:
    - { address: "127.0.0.1:${port}", mtls: true }
`
}

/** The raw client's TLS: an SVID for CLIENT_SERVICE and one secure context built as Weft builds its own. */
export interface RawTls {
  svid: Svid
  secureContext: SecureContext
  /** The connect options undici and node:tls get (besides host and port). */
  connect: { secureContext: SecureContext; rejectUnauthorized: true; checkServerIdentity: ReturnType<typeof spiffeServerCheck> }
}

export async function rawTls(dataDir: string, noTickets = true): Promise<RawTls> {
  const svid = await issueSvid(dataDir, CLIENT_SERVICE)
  const secureContext = createSecureContext(contextOptions(svid, noTickets))
  const expected = `spiffe://${svid.trustDomain}/ns/default/sa/${SERVER_SERVICE}`
  return { svid, secureContext, connect: { secureContext, rejectUnauthorized: true, checkServerIdentity: spiffeServerCheck(expected) } }
}

/**
 * A raw undici Pool over mTLS to 127.0.0.1:`port`, with the mesh's pool options (keep-alive 10 s,
 * connect timeout 5 s) and Weft's TLS settings. `sessions: 'none'` is what the mesh's connector
 * sets (`maxCachedSessions: 0`: no session is ever offered); 'cache' leaves undici's default
 * session cache (100 sessions: new connections resume).
 */
export function tlsPool(tls: RawTls, port: number, sessions: 'none' | 'cache' = 'none'): Pool {
  return new Pool(`https://127.0.0.1:${port}`, {
    keepAliveTimeout: 10_000,
    connectTimeout: 5_000,
    connect: { ...tls.connect, timeout: 5_000, ...(sessions === 'none' ? { maxCachedSessions: 0 } : {}) },
  })
}

/** One GET PATH on `pool` whose answer must be 200 `ok`. */
export function poolSend(pool: Pool): Send {
  return async () => {
    const r = await pool.request({ method: 'GET', path: PATH })
    return r.statusCode === 200 && (await r.body.text()) === 'ok'
  }
}

/**
 * A mesh for CLIENT_SERVICE under the bench daemon, from the built package (dist/), every default
 * layer on; its policy (the Service) comes from the daemon. Resolves once a call to the destination
 * has succeeded (the SVID is signed and the view applied).
 */
export async function controlledMesh(controlUrl: string, joinToken: string): Promise<{ mesh: Weft.Mesh; send: Send }> {
  const distEntry = '../../dist/index.js'
  const { createMesh } = (await import(distEntry)) as typeof Weft
  const mesh = await createMesh({ service: CLIENT_SERVICE, control: controlUrl, token: joinToken, logger: silent })
  const url = `http://${SERVER_SERVICE}${PATH}`
  const send: Send = async () => {
    const r = await mesh.request(url)
    return r.statusCode === 200 && (await r.body.text()) === 'ok'
  }
  const deadline = Date.now() + 20_000
  for (;;) {
    const err = await send().then((ok) => (ok ? undefined : new Error('bad status or body')), (e: unknown) => e)
    if (err === undefined && mesh.identity.current()) return { mesh, send }
    if (Date.now() > deadline) throw new Error(`the mesh could not call ${url} over mTLS within 20 s: ${String(err)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Fails the run on any failed request (the first error is in the message). */
export function check<T extends { errors: number; requests: number; firstError: unknown }>(r: T, arm: string): T {
  if (r.errors > 0) throw new Error(`${arm}: ${r.errors} of ${r.requests} requests failed; first: ${String(r.firstError)}`, { cause: r.firstError })
  return r
}

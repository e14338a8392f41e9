// The server side of bench/sidecar.ts, in the main process: a control daemon (the CA), the plain
// node:http app, the two nginx sidecars with certificates from that CA, and the meshed servers —
// each in a process of its own — and the CPU of the processes on each arm's path.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client, request } from 'undici'
import type * as Weft from '../../src/index.js'
import { forkTs, nextMessage, startUpstream, stopDaemonHost, type Upstream } from './load.js'
import { clientSidecarConf, serverSidecarConf, statusSocket, type SidecarCerts } from './nginx-conf.js'
import { findNginx, nginxVersion, startNginx, type Nginx } from './nginx.js'
import { issueSvid, type Svid } from './svid.js'

const lib = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const silent = { info() {}, warn() {}, error() {} }

/** The meshed servers: mTLS STRICT only, and mTLS STRICT with an AuthorizationPolicy (only checkout may call). */
export const SERVICES = { weft: 'payments', 'weft-authz': 'payments-authz' } as const
export type Arm = 'raw' | 'sidecar' | keyof typeof SERVICES

export interface Stack {
  /** The plain app (raw arm) and the client's sidecar (sidecar arm), http://127.0.0.1:PORT. */
  origins: { raw: string; sidecar: string }
  control: { url: string; token: string }
  /** Resolves once the meshed servers listen and the AuthorizationPolicy check passed. */
  ready: Promise<void>
  /** The counters so far of the processes on `arm`'s path besides its client. */
  pathStats(arm: Arm): Promise<PathStats>
  /** For a failure of `arm`: the end of the sidecars' error logs (empty for the other arms). */
  diagnose(arm: Arm): string
  /** What runs where, for the report. */
  describe: { nginxPids: number[][]; nginxVersion: string }
  stop(): Promise<void>
}

export interface PathStats {
  /** CPU µs of the app, the sidecars or the meshed server. */
  total: number
  /** CPU µs of the proxies alone (the two nginx); 0 for the other arms. */
  proxies: number
  /** mTLS connections accepted by the server side (nginx B, or the meshed server); 0 for raw. */
  handshakes: number
}

interface Meshed {
  port: number
  stats(): Promise<{ cpu: number; connections: number }>
  kill(): void
}

/** A meshed server (lib/weft-server.ts) for `service`; its CPU query also fails on any plaintext request. */
async function startMeshed(service: string, url: string, token: string): Promise<Meshed> {
  const child = forkTs(lib('./weft-server.ts'), ['--service', service, '--control', url, '--token', token])
  const port = await nextMessage(child, 30_000, (m) => (m as { port?: number }).port)
  return {
    port,
    stats: async () => {
      const answer = nextMessage(child, 10_000, (m) => ((m as { cpu?: unknown }).cpu ? (m as { cpu: NodeJS.CpuUsage; plaintext: number; connections: number }) : undefined))
      child.send('cpu')
      const r = await answer
      if (r.plaintext > 0) throw new Error(`${service}: ${r.plaintext} request(s) reached the app in plaintext under STRICT`)
      return { cpu: r.cpu.user + r.cpu.system, connections: r.connections }
    },
    kill: () => void child.kill('SIGTERM'),
  }
}

/** PeerAuthentication STRICT for both meshed services (STRICT is the default; said here so the bench never depends on it) and the ALLOW policy. */
function policy(trustDomain: string): string {
  const strict = (s: string) => `apiVersion: weft/v1\nkind: PeerAuthentication\nmetadata: { name: ${s}-strict }\nspec: { service: ${s}, mtls: STRICT }\n`
  const authz = SERVICES['weft-authz']
  return [
    strict(SERVICES.weft),
    strict(authz),
    `apiVersion: weft/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${authz}-allow-checkout }\nspec:\n  service: ${authz}\n  action: ALLOW\n  rules:\n` +
      `    - from: [{ principals: ["spiffe://${trustDomain}/ns/default/sa/checkout"] }]\n`,
  ].join('---\n')
}

/** Writes an SVID as the PEM files nginx reads (the key 0600). */
function writeCerts(dir: string, name: string, svid: Svid): SidecarCerts {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  const rootsFile = join(dir, 'roots.pem')
  writeFileSync(certFile, svid.certChainPem.join('\n'))
  writeFileSync(keyFile, svid.keyPem, { mode: 0o600 })
  writeFileSync(rootsFile, svid.roots.join('\n'))
  return { certFile, keyFile, rootsFile }
}

/**
 * Starts what the arms in `arms` need and resolves once the app and the sidecars are up; the meshed
 * servers come up meanwhile (`ready`), so the caller can start its clients at once. Everything
 * started is stopped by `stop()`, and by this function itself when a step fails.
 */
export async function startStack(arms: Arm[]): Promise<Stack> {
  const needNginx = arms.includes('sidecar')
  if (needNginx) findNginx() // fail before anything starts when nginx is missing
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-sidecar-'))
  // nginx's workers drop root for `nobody` when started as root: they may pass through, not list.
  chmodSync(dir, 0o711)
  // Removed however this process ends (scenario() exits at once on an overrun; keys are in there).
  const removeDir = () => rmSync(dir, { recursive: true, force: true })
  process.on('exit', removeDir)
  const stops: (() => unknown)[] = [() => process.off('exit', removeDir), removeDir]
  let ready: Promise<void> = Promise.resolve()
  const stop = async () => {
    await ready.catch(() => {}) // so no server still starting is left out
    for (const s of stops.reverse()) await s()
  }
  try {
    const dataDir = join(dir, 'daemon')
    mkdirSync(dataDir, { mode: 0o700 })
    const daemonUp = (async () => {
      const daemon = forkTs(lib('./daemon-host.ts'), [dataDir])
      stops.push(() => stopDaemonHost(daemon))
      const url = await nextMessage(daemon, 30_000, (m) => (m as { url?: string }).url)
      const token = readFileSync(join(dataDir, 'join.token'), 'utf8').trim()
      const admin = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim()
      const [client, server] = await Promise.all([issueSvid(dataDir, 'checkout'), issueSvid(dataDir, 'payments')])
      await applyPolicy(url, admin, policy(client.trustDomain))
      return { url, token, client, server }
    })()
    const upstreamUp = startUpstream(1).then((u) => {
      stops.push(() => u.stop())
      return u
    })
    // Both settle before going on, so a failure of one never leaves the other running unstopped.
    await Promise.allSettled([daemonUp, upstreamUp])
    const [{ url, token, client, server }, upstream] = await Promise.all([daemonUp, upstreamUp])

    const meshed = {} as Record<keyof typeof SERVICES, Meshed>
    ready = (async () => {
      await Promise.all((Object.keys(SERVICES) as (keyof typeof SERVICES)[]).filter((a) => arms.includes(a)).map(async (a) => {
        meshed[a] = await startMeshed(SERVICES[a], url, token)
        stops.push(() => meshed[a].kill())
      }))
      if (arms.includes('weft-authz')) await checkDenied(url, token)
    })()
    ready.catch(() => {}) // awaited by the caller; this only keeps it from counting as unhandled meanwhile
    let a: Nginx | undefined
    let b: Nginx | undefined
    if (needNginx) {
      const [aDir, bDir] = [join(dir, 'nginx-a'), join(dir, 'nginx-b')]
      b = await startNginx(bDir, (port) => serverSidecarConf(bDir, port, upstream.ports[0]!, writeCerts(dir, 'payments', server)))
      stops.push(() => b!.stop())
      a = await startNginx(aDir, (port) => clientSidecarConf(aDir, port, b!.port, 'payments', writeCerts(dir, 'checkout', client)))
      stops.push(() => a!.stop())
    }
    // Connections nginx B accepted: all from A over mTLS, but for these status queries (one each).
    let queries = 0
    const bAccepts = async () => {
      queries++
      return (await stubStatus(statusSocket(join(dir, 'nginx-b')))).accepts - queries
    }
    return {
      origins: { raw: `http://127.0.0.1:${upstream.ports[0]}`, sidecar: `http://127.0.0.1:${a?.port ?? 0}` },
      control: { url, token },
      ready,
      pathStats: async (arm) => {
        if (arm === 'raw') return { total: await upstream.cpuMicros(), proxies: 0, handshakes: 0 }
        if (arm === 'weft' || arm === 'weft-authz') {
          const m = await meshed[arm].stats()
          return { total: m.cpu, proxies: 0, handshakes: m.connections }
        }
        const proxies = a!.cpuMicros() + b!.cpuMicros()
        const [app, handshakes] = await Promise.all([upstream.cpuMicros(), bAccepts()])
        return { total: proxies + app, proxies, handshakes }
      },
      diagnose: (arm) => (arm === 'sidecar' && a && b ? `\nnginx A error log: ${a.logTail() || '(empty)'}\nnginx B error log: ${b.logTail() || '(empty)'}` : ''),
      describe: { nginxPids: a && b ? [a.pids, b.pids] : [], nginxVersion: needNginx ? nginxVersion() : '' },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** nginx's stub_status counters, read over its unix socket with a connection of their own. */
async function stubStatus(socketPath: string): Promise<{ accepts: number }> {
  const client = new Client('http://localhost', { socketPath })
  try {
    const res = await client.request({ method: 'GET', path: '/' })
    const text = await res.body.text()
    // "server accepts handled requests\n <accepts> <handled> <requests>"
    const m = /accepts handled requests\s+(\d+)/.exec(text)
    if (res.statusCode !== 200 || !m) throw new Error(`nginx stub_status: ${res.statusCode} ${text.slice(0, 200)}`)
    return { accepts: Number(m[1]) }
  } finally {
    await client.close()
  }
}

async function applyPolicy(url: string, admin: string, yaml: string): Promise<void> {
  const res = await request(`${url}/v1/policy`, { method: 'POST', body: yaml, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/yaml' } })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`POST /v1/policy: ${res.statusCode} ${text}`)
}

/**
 * The AuthorizationPolicy is in force: a mesh with another identity (`ledger`) gets 403 from the
 * authz server, naming the policy. Run once, in this process, before measuring; that checkout is
 * allowed shows in every measured request.
 */
async function checkDenied(url: string, token: string): Promise<void> {
  const distEntry = '../../dist/index.js'
  const { createMesh } = (await import(distEntry)) as typeof Weft
  const mesh = await createMesh({ service: 'ledger', control: url, token, logger: silent })
  const target = `http://${SERVICES['weft-authz']}/charge`
  try {
    const deadline = Date.now() + 20_000
    for (;;) {
      // Until the server has registered, the call fails with no endpoints; then it must be denied.
      const got = await mesh.request(target).then(async (r) => `${r.statusCode} ${await r.body.text()}`, (e: unknown) => String(e))
      if (got.startsWith('403') && got.includes(`${SERVICES['weft-authz']}-allow-checkout`)) return
      if (Date.now() > deadline || got.startsWith('200')) throw new Error(`the AuthorizationPolicy check failed: ledger should get 403 from ${target}, got ${got.slice(0, 300)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } finally {
    await mesh.close()
  }
}

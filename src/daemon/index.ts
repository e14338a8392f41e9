// The control daemon (issue 5; docs/design/control-plan.md): policy store with history, instance
// registry with leases, watch streams pushing versioned views, ACK/NACK status, all over one
// HTTP+JSON port. startDaemon wires the parts; each lives in its own file:
//   store.ts / embedded-store.ts  where state lives      auth.ts          tokens and who may call what
//   policy-service.ts              apply/delete/rollback  registry.ts      registrations and leases
//   hub.ts                         the watch streams      status.ts        per-instance sync state
//   api.ts / router.ts / server.ts the HTTP side
import { mkdir, readFile, rm, stat } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { formatHostPort, isLoopback } from '../util/host-port.js'
import { consoleLogger, type Logger } from '../util/logger.js'
import { buildApi } from './api.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { Auth } from './auth.js'
import { CaService } from './ca-service.js'
import { DaemonIdentity } from './daemon-identity.js'
import { closePendingConnections } from '../http/tls-front-door.js'
import { JwtService } from './jwt-service.js'
import { EmbeddedStore } from './embedded-store.js'
import { PushHub } from './hub.js'
import { PolicyService } from './policy-service.js'
import { Registry } from './registry.js'
import { RevocationService } from './revocations.js'
import { createDaemonServer } from './server.js'
import { StatusBoard } from './status.js'
import type { Store } from './store.js'
import { TrafficBoard } from './traffic-board.js'

export type { Store } from './store.js'
export { EmbeddedStore } from './embedded-store.js'
export type { InstanceView, ServiceView, StatusEntry } from './api.js'
export type { ApplyResult, Change } from './policy-service.js'
export type { InstanceStatus, SyncState } from './status.js'

export interface DaemonOptions {
  /** 'host:port' to listen on; default '127.0.0.1:7070'; port 0 picks a free one. */
  listen?: string
  /**
   * A separate listener for admin calls ('host:port', plain HTTP: keep it on loopback or an
   * operators' network). When set, the admin token is refused on `listen`, which then serves
   * instances only, and this listener takes no other token (RELIABILITY 3.4: a separate admin
   * identity on a separate listener). Default: none, admin and instance calls share `listen`.
   */
  adminListen?: string
  /** Where the embedded store, the token files and daemon.json live. */
  dataDir: string
  /** Default: the embedded store in dataDir. startDaemon opens it; close() closes it. */
  store?: Store
  /** How long an instance outlives its last watch stream; default 10 s. */
  leaseTtlMs?: number
  /** Changes within this window are pushed as one version; default 50 ms. */
  coalesceMs?: number
  logger?: Logger
  /** Where first-start secrets (admin and join token) are printed; default stdout. */
  print?: (line: string) => void
  /** The SPIFFE trust domain of the CA made at first start. Default weft.local. */
  trustDomain?: string
  /** Lifetime of the X509-SVIDs the CA signs. Default 24 h. */
  svidTtlMs?: number
  /** An operator-supplied CA (PEM texts) instead of the one made in <dataDir>/ca/. */
  ca?: { certPem: string; keyPem: string; chainPem?: string; bundlePem?: string }
}

export interface Daemon {
  /** http://host:port, with the port actually bound. */
  url: string
  port: number
  /** The admin listener's http://host:port, when DaemonOptions.adminListen set one. */
  adminUrl?: string
  /** The data dir, absolute. */
  dataDir: string
  store: Store
  /** Ends watch streams, stops timers, closes the server and the store. */
  close(): Promise<void>
}

export const DAEMON_FILE = 'daemon.json'

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const leaseTtlMs = opts.leaseTtlMs ?? 10_000
  const coalesceMs = opts.coalesceMs ?? 50
  if (!Number.isFinite(leaseTtlMs) || leaseTtlMs <= 0) throw new Error(`leaseTtlMs must be a positive number of milliseconds (got ${leaseTtlMs})`)
  if (!Number.isFinite(coalesceMs) || coalesceMs < 0) throw new Error(`coalesceMs must be zero or more milliseconds (got ${coalesceMs})`)
  const logger = opts.logger ?? consoleLogger
  const print = opts.print ?? ((line: string) => void process.stdout.write(line + '\n'))
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:7070')
  const adminAt = opts.adminListen === undefined ? undefined : parseListen(opts.adminListen, 'adminListen')
  const dataDir = resolve(opts.dataDir)
  // 0700: the dir holds the token files (themselves 0600).
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  // An existing dir keeps its mode (it may be a shared one: not changed here, but said).
  if (((await stat(dataDir)).mode & 0o077) !== 0) logger.warn(`control daemon: data dir ${dataDir} is readable by other users; it holds token files (chmod 700 it)`)

  const store: Store = opts.store ?? new EmbeddedStore(dataDir, { logger, restoreTtlMs: leaseTtlMs })
  await store.open()
  let hub: PushHub | undefined
  let server: Server | undefined
  let adminServer: Server | undefined
  let identity: DaemonIdentity | undefined
  try {
    const auth = new Auth(store)
    await auth.init(dataDir, print, logger)
    // A store daemons share holds the CA and the JWT key: one root and one JWKS for all of them.
    const shared = store.sharedDoc ? { state: store.sharedDoc('ca'), operatorBundle: store.sharedDoc('ca-operator-bundle'), jwtKey: store.sharedDoc('jwt-key') } : undefined
    const ca = await CaService.open({ dataDir, ...(opts.trustDomain ? { trustDomain: opts.trustDomain } : {}), ...(opts.svidTtlMs ? { svidTtlMs: opts.svidTtlMs } : {}), ...(opts.ca ? { operator: opts.ca } : {}), ...(shared ? { shared } : {}), logger })
    const jwt = await JwtService.open(dataDir, ca.trustDomain, shared?.jwtKey, logger)
    const status = new StatusBoard()
    hub = new PushHub(store, { coalesceMs, pingMs: Math.max(1, Math.floor(leaseTtlMs / 3)), leaseTtlMs, logger, onSent: (id, v) => status.sent(id, v) })
    store.onEvent((e) => {
      if (e.type === 'instances') for (const id of e.deleted) status.forget(id)
    })
    await hub.start()
    const registry = new Registry(store, leaseTtlMs, logger)
    const policy = new PolicyService(store, () => hub!.endpoints())
    const revocations = new RevocationService(store, policy, ca.trustDomain, logger)
    const router = buildApi({ store, auth, hub, policy, registry, status, logger, ca, jwt, revocations, traffic: new TrafficBoard() })
    // With an admin listener each server refuses the other's credentials (server.ts checkListener).
    const urls = { instances: '', admin: '' }
    const isAdmin = (header: string | undefined) => auth.isAdminHeader(header)
    server = createDaemonServer(router, logger, undefined, adminAt ? { kind: 'instances', isAdmin, urls } : undefined)
    identity = await DaemonIdentity.start(ca, logger)
    identity.attach(server)
    await listen(server, host, port)
    const bound = (server.address() as AddressInfo).port
    const url = `http://${formatHostPort(advertised(host), bound)}`
    urls.instances = url
    let adminUrl: string | undefined
    if (adminAt) {
      adminServer = createDaemonServer(router, logger, undefined, { kind: 'admin', isAdmin, urls })
      await listen(adminServer, adminAt.host, adminAt.port)
      adminUrl = urls.admin = `http://${formatHostPort(advertised(adminAt.host), (adminServer.address() as AddressInfo).port)}`
      if (!isLoopback(adminAt.host)) logger.warn(`control daemon: the admin listener ${opts.adminListen} is plain HTTP on a non-loopback address: the admin token crosses the network in the clear`)
    }
    // Before any request: the records this daemon holds name it (status on daemons sharing a store).
    registry.holder = url
    const daemonFile = join(dataDir, DAEMON_FILE)
    await writeFileAtomic(daemonFile, JSON.stringify({ url, ...(adminUrl ? { adminUrl } : {}), pid: process.pid }) + '\n', 0o600)
    logger.info(`control daemon listening on ${url}${adminUrl ? ` for instances, admin calls on ${adminUrl}` : ''} (data dir ${dataDir}, version ${hub.version}); dashboard at ${adminUrl ?? url}/dashboard`)

    const srvs = [server, ...(adminServer ? [adminServer] : [])]
    const h = hub
    const id = identity
    let closing: Promise<void> | undefined
    const close = () =>
      (closing ??= (async () => {
        registry.close()
        h.close()
        id.close()
        await Promise.all(srvs.map((srv) => new Promise<void>((done) => {
          srv.close(() => done())
          srv.closeAllConnections()
          closePendingConnections(srv)
        })))
        await store.close()
        // daemon.json tells the CLI where a running daemon is: remove it unless another wrote it.
        const text = await readFile(daemonFile, 'utf8').catch(() => '')
        if (text.includes(`"pid":${process.pid}`) && text.includes(JSON.stringify(url))) await rm(daemonFile, { force: true })
      })())
    return { url, port: bound, ...(adminUrl ? { adminUrl } : {}), dataDir, store, close }
  } catch (err) {
    hub?.close()
    identity?.close()
    for (const srv of [server, adminServer]) if (srv?.listening) await new Promise<void>((done) => srv.close(() => done()))
    await store.close().catch(() => {})
    throw err
  }
}

/** 'host:port', '[v6]:port' or ':port' (all interfaces); port 0 asks for a free one. */
export function parseListen(listen: string, what = 'listen'): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/[\]]*)):(\d{1,5})$/.exec(listen)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new Error(`${what} must be host:port, with a port from 0 to 65535 (got "${listen}")`)
  const host = m[1] ?? m[2]!
  return { host: host === '' ? undefined : host, port }
}

/** The host a client on this machine dials: an unspecified listen address means loopback. */
function advertised(host: string | undefined): string {
  if (host === undefined || host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '::1'
  return host
}

/** Accept queue: Node's default (511) overflowed when thousands of instances reconnect at once. The kernel caps it at somaxconn. */
const BACKLOG = 4096

function listen(server: Server, host: string | undefined, port: number): Promise<void> {
  return new Promise((ok, fail) => {
    server.once('error', fail)
    server.listen({ port, host, backlog: BACKLOG }, () => {
      server.off('error', fail)
      ok()
    })
  })
}

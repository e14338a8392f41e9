// `weft sidecar`: the mesh for a service that is not Node (or cannot be changed), run as a local
// proxy from the same code (ARCHITECTURE §1–2). Two listeners around the application:
//   inbound   callers → [mesh.listen: mTLS, authz, shedding, metrics, drain] → the app's address
//   outbound  the app → 127.0.0.1 proxy → [mesh.dispatcher: Route, balancing, retries, mTLS] → services
// The application changes nothing but where it sends its calls (HTTP_PROXY, or the proxy's address
// with `Host: <service>`); under a daemon the inbound listener is what registers, so callers reach
// the app through its sidecar.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createMesh, type Mesh } from '../mesh.js'
import type { MeshOptions } from '../options.js'
import { WeftError } from '../errors/index.js'
import { invalidArg } from '../errors/index.js'
import { writeRawError } from '../http/upgrade.js'
import { appForwarder } from './app-forwarder.js'
import { outboundProxy, type OutboundProxy } from './outbound-proxy.js'
import { routeTemplates } from './route-templates.js'
import { isLoopback } from '../util/host-port.js'

export interface HostPort {
  host?: string
  port: number
}

export interface SidecarOptions {
  /** The mesh this sidecar runs (service, namespace, config or control + token, …). */
  mesh: MeshOptions
  /** Where the application listens (loopback, normally). */
  app: { host: string; port: number }
  /** Where callers reach the app through the mesh (default 0.0.0.0:15006, Istio's inbound port). */
  inbound?: HostPort
  /** The app's outbound proxy (default 127.0.0.1:15001); false for none. */
  outbound?: HostPort | false
  /** Route templates for inbound metrics (`/users/:id`, `/static/*`); see route-templates.ts. */
  routes?: readonly string[]
}

export interface Sidecar {
  readonly mesh: Mesh
  readonly inbound: AddressInfo
  readonly outbound: AddressInfo | undefined
  /** Drains the inbound side (as mesh.close() does), then closes the outbound proxy. */
  close(): Promise<void>
}

function listenPlain(server: http.Server, at: HostPort): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(at.port, at.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve(server.address() as AddressInfo)
    })
  })
}

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const app = options.app
  if (typeof app?.host !== 'string' || !Number.isInteger(app.port) || app.port < 1 || app.port > 65535) invalidArg('app', 'must be { host, port } with a port from 1 to 65535')
  const route = options.routes && options.routes.length > 0 ? routeTemplates(options.routes) : undefined
  const mesh = await createMesh(options.mesh)
  const forwarder = appForwarder(app, mesh.inbound, () => mesh.identity.id)
  try {
    const inboundServer = http.createServer(forwarder.handler)
    inboundServer.on('upgrade', forwarder.upgrade)
    const inbound = await mesh.listen(inboundServer, { port: options.inbound?.port ?? 15006, host: options.inbound?.host ?? '0.0.0.0', ...(route ? { route: (req) => route(req.url ?? '/') } : {}) })

    let outboundServer: http.Server | undefined
    let outbound: AddressInfo | undefined
    let proxy: OutboundProxy | undefined
    if (options.outbound !== false) {
      proxy = outboundProxy(mesh)
      outboundServer = http.createServer(proxy.handler)
      outboundServer.on('upgrade', proxy.upgrade)
      // A CONNECT tunnel would carry TLS the mesh cannot see into: the app sends plain http://
      // and the mesh adds mTLS itself.
      outboundServer.on('connect', (_req, socket) => {
        const e = new WeftError('WEFT_ERR_METHOD_NOT_ALLOWED', 'CONNECT tunnels are not proxied: send plain http://<service>/… requests; the mesh adds mTLS itself')
        writeRawError(socket, mesh.inbound.errorResponse(e, undefined))
      })
      const at = options.outbound ?? { port: 15001 }
      outbound = await listenPlain(outboundServer, at)
      // Whoever reaches the outbound proxy calls services as this service, with its certificate.
      if (!isLoopback(outbound.address)) (options.mesh.logger ?? console).warn(`sidecar: the outbound proxy listens on ${outbound.address}:${outbound.port}, reachable from other machines; anyone who reaches it calls services as ${options.mesh.service}. Bind it to 127.0.0.1 unless something else guards it`)
    }

    let closing: Promise<void> | undefined
    const close = async (): Promise<void> => {
      await mesh.close()
      if (outboundServer) {
        const s = outboundServer
        await new Promise<void>((resolve) => {
          s.close(() => resolve())
          s.closeAllConnections()
          // The app's WebSockets out: the mesh they went through is closed now.
          proxy?.destroyUpgraded()
        })
      }
      await forwarder.close()
    }
    return { mesh, inbound, outbound, close: () => (closing ??= close()) }
  } catch (err) {
    await mesh.close()
    await forwarder.close()
    throw err
  }
}

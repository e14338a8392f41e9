// The daemon's HTTP+JSON API (docs/design/control-plan.md, "HTTP API"): one handler per call. Each
// handler authenticates first (before reading a body, so an anonymous caller cannot make the daemon
// buffer a megabyte), then checks its input, then acts. Refusals are HttpErrors; server.ts writes them.
import type { ServerResponse } from 'node:http'
import { composeView } from '../control/compose.js'
import type { EndpointMap } from '../control/protocol.js'
import { serviceKey } from '../control/service-key.js'
import type { Logger } from '../util/logger.js'
import { peerOf } from '../identity/peer.js'
import { notFoundInstance, type Auth, type Credentials } from './auth.js'
import { readBody, readJsonObject } from './body.js'
import type { PushHub, Watch } from './hub.js'
import type { PolicyService } from './policy-service.js'
import type { Registry } from './registry.js'
import { parseAck, parseHeartbeat, parseWindowParam, parseRegister, parseRollback, parseTokenRequest, parseUpdate, parseVersionParam, requirePolicyType } from './requests.js'
import { Router, type Ctx } from './router.js'
import type { InstanceStatus, StatusBoard } from './status.js'
import type { InstanceRecord, Store } from './store.js'
import type { CaService } from './ca-service.js'
import type { JwtService } from './jwt-service.js'
import { parseSvidRequest } from './identity-requests.js'
import type { RevocationService } from './revocations.js'
import { newerFields, SkewNotes } from './version-skew.js'
import type { TrafficBoard } from './traffic-board.js'
import { DASHBOARD_PATHS, sendDashboardFile } from './dashboard/serve.js'

/** An instance as the API shows it: the registration without its token hashes. */
export interface InstanceView extends Omit<InstanceRecord, 'tokenHash' | 'joinHash'> {
  /** A watch stream of it is open on this daemon. */
  connected: boolean
}

export type StatusEntry = InstanceView & InstanceStatus

export interface ServiceView {
  name: string
  namespace: string
  protocol: 'http' | 'grpc'
  source: 'policy' | 'registry' | 'both'
  /** Endpoints an instance would use: static ones, else the registry's of the same protocol. */
  endpoints: number
}

export interface ApiDeps {
  store: Store
  auth: Auth
  hub: PushHub
  policy: PolicyService
  registry: Registry
  status: StatusBoard
  logger: Logger
  ca: CaService
  jwt: JwtService
  revocations: RevocationService
  /** The fleet's traffic from the heartbeats, for GET /v1/top (`weft top`). */
  traffic: TrafficBoard
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n'
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers })
  res.end(text)
}

export function buildApi(d: ApiDeps): Router {
  const { store, auth, hub, policy, registry, status, logger, ca, jwt, revocations, traffic } = d
  const authz = (ctx: Ctx) => ctx.req.headers.authorization
  const creds = (ctx: Ctx): Credentials => ({ header: ctx.req.headers.authorization, peer: peerOf(ctx.req.socket) })
  const admin = async (ctx: Ctx) => {
    await auth.requireAdmin(authz(ctx))
    ctx.admin = true
  }
  const skew = new SkewNotes(logger)
  const view = (r: InstanceRecord): InstanceView => ({
    id: r.id,
    service: r.service,
    namespace: r.namespace,
    ...(r.address !== undefined ? { address: r.address, port: r.port } : {}),
    protocol: r.protocol,
    labels: r.labels,
    ...(r.locality !== undefined ? { locality: r.locality } : {}),
    registeredAt: r.registeredAt,
    connected: registry.connected(r.id),
  })
  /** Any call from instance `id`: it is alive (status lastSeen, and its streams are not silent). */
  const heardFrom = (id: string) => {
    status.seen(id)
    hub.heard(id)
  }
  const sorted = async () => (await store.listInstances()).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

  const router = new Router()
  // The web page (no data in it; its calls are the admin API's below, with the token typed in).
  for (const path of DASHBOARD_PATHS) router.add('GET', path, async ({ res }) => sendDashboardFile(res, path))
  return router
    .add('GET', '/healthz', async ({ res }) => sendJson(res, 200, { ok: true, version: hub.version }))

    .add('POST', '/v1/register', async (ctx) => {
      // A token that is not a join token is refused before the body is read.
      await auth.identify(authz(ctx))
      const ignored = newerFields(ctx.req)
      const req = parseRegister(await readJsonObject(ctx.req), ignored)
      const join = await auth.requireJoin(authz(ctx), req.service, req.namespace)
      const answer = await registry.register(req, join)
      status.registered(answer.id)
      skew.note(ctx.req, ctx.res, `instance ${answer.id}`, ignored)
      logger.info(`registered instance ${answer.id} of ${req.service}${req.address !== undefined ? ` at ${req.address}:${req.port}` : ' (client only)'}`)
      sendJson(ctx.res, 201, answer)
    })

    .add('PUT', '/v1/instances/:id', async (ctx) => {
      const id = ctx.params.id!
      await auth.requireInstance(creds(ctx), id, await store.getInstance(id))
      const ignored = newerFields(ctx.req)
      const rec = await registry.update(id, parseUpdate(await readJsonObject(ctx.req), ignored))
      heardFrom(id)
      skew.note(ctx.req, ctx.res, `instance ${id}`, ignored)
      sendJson(ctx.res, 200, view(rec))
    })

    .add('DELETE', '/v1/instances/:id', async (ctx) => {
      const id = ctx.params.id!
      await auth.requireInstance(creds(ctx), id, await store.getInstance(id), true)
      // Its open streams end with it (the hub sees the delete).
      await registry.remove(id)
      status.forget(id)
      logger.info(`deregistered instance ${id}`)
      sendJson(ctx.res, 200, { id, deleted: true })
    })

    .add('GET', '/v1/instances/:id/watch', async (ctx) => watch(ctx, d))

    // Identity (docs/design/identity-plan.md): the CA signs the instance's CSR for the identity
    // its registration holds; the bundle is readable by any authenticated caller.
    .add('POST', '/v1/instances/:id/svid', async (ctx) => {
      const id = ctx.params.id!
      const rec = await store.getInstance(id)
      await auth.requireInstance(creds(ctx), id, rec)
      const { csr } = parseSvidRequest(await readJsonObject(ctx.req))
      await revocations.refuseSigning(rec!, 'certificate')
      const answer = await ca.sign(rec!, csr)
      logger.info(`signed a certificate for instance ${id} as ${ca.idOf(rec!)} until ${answer.notAfter}`)
      sendJson(ctx.res, 200, answer)
    })

    .add('POST', '/v1/instances/:id/jwt-svid', async (ctx) => {
      const id = ctx.params.id!
      const rec = await store.getInstance(id)
      await auth.requireInstance(creds(ctx), id, rec)
      const body = await readJsonObject(ctx.req)
      await revocations.refuseSigning(rec!, 'JWT-SVID')
      sendJson(ctx.res, 200, await jwt.sign(ca.idOf(rec!), body))
    })

    // Public keys, like any OIDC issuer's: verifiers (RequestAuthentication jwksUri) need no token.
    // max-age stays under the 45 s between a rotate and the new key's first token, so a verifier
    // that honours it (and never refetches on an unknown kid) has the new key before it is used.
    .add('GET', '/v1/jwks', async (ctx) => sendJson(ctx.res, 200, await jwt.jwks(), { 'cache-control': 'max-age=30' }))

    // JWT-SVID key rotation with overlap (jwt-service.ts), apart from the CA's: rotate publishes a
    // new key, which signs from its activation 45 s later; retire drops the old one (refused while
    // its tokens may be valid, unless force).
    .add('GET', '/v1/jwt/keys', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await jwt.view())
    })

    .add('POST', '/v1/jwt/rotate', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await jwt.rotate())
    })

    .add('POST', '/v1/jwt/retire', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await jwt.retire(await readJsonObject(ctx.req, true)))
    })

    .add('GET', '/v1/bundle', async (ctx) => {
      if (!peerOf(ctx.req.socket)) await auth.identify(authz(ctx))
      sendJson(ctx.res, 200, ca.bundleMessage(hub.version).bundle)
    })

    .add('POST', '/v1/ca/rotate', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, { bundle: await ca.rotate() })
    })

    .add('POST', '/v1/ca/retire', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, { bundle: await ca.retire() })
    })

    // Revocation of one identity (RELIABILITY M8; revocations.ts): stored as an IdentityRevocation
    // policy resource, so it reaches every instance's view like any policy.
    .add('GET', '/v1/revocations', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await revocations.list())
    })

    .add('POST', '/v1/revocations', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await revocations.revoke(await readJsonObject(ctx.req)))
    })

    .add('DELETE', '/v1/revocations/:namespace/:service', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await revocations.lift(ctx.params.namespace!, ctx.params.service!))
    })

    // The instance answers each ping with this (or with a pending ACK): a stream whose instance
    // stays silent for a whole lease is dropped (a frozen process keeps its TCP stream open).
    .add('POST', '/v1/instances/:id/heartbeat', async (ctx) => {
      const id = ctx.params.id!
      const rec = await store.getInstance(id)
      await auth.requireInstance(creds(ctx), id, rec)
      const ignored = newerFields(ctx.req)
      const beat = parseHeartbeat(await readJsonObject(ctx.req, true), ignored)
      heardFrom(id)
      if (beat.traffic && rec) traffic.report(rec, beat.traffic)
      skew.note(ctx.req, ctx.res, `instance ${id}`, ignored)
      sendJson(ctx.res, 200, { ok: true, version: hub.version })
    })

    .add('POST', '/v1/instances/:id/ack', async (ctx) => {
      const id = ctx.params.id!
      await auth.requireInstance(creds(ctx), id, await store.getInstance(id))
      const ignored = newerFields(ctx.req)
      const ack = parseAck(await readJsonObject(ctx.req), ignored)
      skew.note(ctx.req, ctx.res, `instance ${id}`, ignored)
      status.ack(id, ack.version, ack.error, ack.kept)
      hub.heard(id)
      if (ack.error !== undefined) logger.warn(`instance ${id} rejected version ${ack.version} (NACK): ${ack.error.split('\n')[0]}`)
      sendJson(ctx.res, 200, { ok: true })
    })

    .add('GET', '/v1/instances', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, { instances: (await sorted()).map(view) })
    })

    .add('GET', '/v1/status', async (ctx) => {
      await admin(ctx)
      // heldBy another daemon (a shared store): its stream and sync state are there.
      const elsewhere = (r: InstanceRecord) => (r.heldBy !== undefined && r.heldBy !== registry.holder ? r.heldBy : undefined)
      const instances: StatusEntry[] = (await sorted()).map((r) => ({ ...view(r), ...status.view(r.id, registry.connected(r.id), elsewhere(r)) }))
      // The identities revoked (RELIABILITY M8), so `weft status` shows which instances are cut off.
      sendJson(ctx.res, 200, { version: hub.version, instances, revocations: (await revocations.list()).revocations })
    })

    .add('POST', '/v1/policy', async (ctx) => {
      await admin(ctx)
      requirePolicyType(ctx.req.headers['content-type'])
      const text = await readBody(ctx.req)
      const dryRun = ['true', '1'].includes(ctx.query.get('dryRun') ?? '')
      const result = await policy.apply(text, dryRun)
      if (!dryRun && result.changes.some((c) => c.action !== 'unchanged')) logger.info(`policy version ${result.version}: ${result.changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${c.kind}/${c.name}`).join('; ')}`)
      sendJson(ctx.res, 200, result)
    })

    .add('GET', '/v1/policy', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await policy.list())
    })

    .add('DELETE', '/v1/policy/:kind/:name', async (ctx) => {
      await admin(ctx)
      const ns = ctx.query.get('namespace') || 'default'
      sendJson(ctx.res, 200, await policy.delete(ctx.params.kind!, ctx.params.name!, ns))
    })

    // `weft top`: request rate, success rate and latency per service and per caller → callee, from
    // the heartbeats of the instances on this daemon (a daemon sharing a store sees its own only).
    .add('GET', '/v1/top', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, traffic.top(parseWindowParam(ctx.query.get('window'))))
    })

    .add('GET', '/v1/history', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await policy.history())
    })

    .add('POST', '/v1/rollback', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, await policy.rollback(parseRollback(await readJsonObject(ctx.req))))
    })

    .add('GET', '/v1/services', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, servicesView((await policy.list()).resources, hub.endpoints()))
    })

    .add('GET', '/v1/endpoints', async (ctx) => {
      await admin(ctx)
      sendJson(ctx.res, 200, { endpoints: hub.endpoints() })
    })

    .add('GET', '/v1/snapshot', async (ctx) => {
      await admin(ctx)
      const snap = hub.snapshot()
      // What an instance does with it (fillRouteTargets as on the instance side).
      const composed = composeView(snap.resources, snap.endpoints, { fillRouteTargets: true })
      const service = ctx.query.get('service') ?? undefined
      sendJson(ctx.res, 200, {
        ...(service !== undefined ? { service } : {}),
        type: 'snapshot',
        ...snap,
        composed: composed.resources,
        skipped: composed.skipped.map((s) => ({ service: s.service, address: s.endpoint.address, instance: s.endpoint.instance, reason: s.reason })),
      })
    })

    .add('POST', '/v1/tokens', async (ctx) => {
      await admin(ctx)
      const t = parseTokenRequest(await readJsonObject(ctx.req, true))
      const token = await auth.createJoinToken(t.services, t.namespace)
      logger.info(`join token created for ${t.services.join(', ')}${t.namespace !== undefined ? ` in namespace ${t.namespace}` : ''}`)
      sendJson(ctx.res, 200, { token })
    })
}

/**
 * GET /v1/instances/:id/watch: the instance's stream and its lease. The response stays open;
 * server timeouts do not apply to it (the socket's idle timeout is turned off; pings keep
 * intermediaries from thinking it idle).
 */
async function watch(ctx: Ctx, d: ApiDeps): Promise<void> {
  const { req, res } = ctx
  const id = ctx.params.id!
  await d.auth.requireInstance({ header: req.headers.authorization, peer: peerOf(req.socket) }, id, await d.store.getInstance(id))
  const since = parseVersionParam(ctx.query.get('version'))
  const rec = await d.registry.streamOpened(id)
  if (!rec) throw notFoundInstance(id)
  let closed = false
  let handle: Watch | undefined
  let unsubscribe: (() => void) | undefined
  const onClose = () => {
    if (closed) return
    closed = true
    handle?.remove()
    unsubscribe?.()
    d.status.seen(id)
    // Dropped for silence: the instance was not heard from for a whole lease, which is over.
    d.registry.streamClosed(id, handle?.dropped === 'silent').catch((err: Error) => d.logger.error(`lease of instance ${id}: ${err.message}`))
  }
  res.on('close', onClose)
  res.on('error', () => {})
  if (res.destroyed || req.socket.destroyed) return onClose()
  req.socket.setTimeout(0)
  req.socket.setNoDelay(true)
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
  res.flushHeaders()
  d.status.opened(id, peerOf(req.socket) !== undefined)
  if (since !== undefined && since === d.hub.version) d.status.resumed(id, since)
  // bundle=1 (instances that do mTLS): the trust bundle first, then again on every rotation step.
  if (ctx.query.get('bundle') === '1') unsubscribe = d.ca.subscribe(res, d.hub.version)
  // The view scoped to the instance's own service (view-scope.ts): other services' inbound policy stays out.
  handle = d.hub.watch(id, res, since, { namespace: rec.namespace, service: rec.service })
}

function servicesView(resources: object[], endpoints: EndpointMap): { services: ServiceView[]; warnings: string[] } {
  const declared = new Set<string>()
  for (const r of resources as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } }[]) {
    if (r.kind === 'Service' && typeof r.metadata?.name === 'string') declared.add(serviceKey(typeof r.metadata.namespace === 'string' ? r.metadata.namespace : 'default', r.metadata.name))
  }
  const composed = composeView(resources, endpoints)
  const services: ServiceView[] = []
  for (const r of composed.resources as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; spec?: { protocol?: unknown; endpoints?: unknown } }[]) {
    if (r.kind !== 'Service' || typeof r.metadata?.name !== 'string') continue
    const name = r.metadata.name
    const namespace = typeof r.metadata.namespace === 'string' ? r.metadata.namespace : 'default'
    const key = serviceKey(namespace, name)
    const inRegistry = (endpoints[key]?.length ?? 0) > 0
    services.push({
      name,
      namespace,
      protocol: r.spec?.protocol === 'grpc' ? 'grpc' : 'http',
      source: declared.has(key) ? (inRegistry ? 'both' : 'policy') : 'registry',
      endpoints: Array.isArray(r.spec?.endpoints) ? r.spec.endpoints.length : 0,
    })
  }
  services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0))
  return { services, warnings: composed.skipped.map((s) => `${s.service}: endpoint ${s.endpoint.address} (instance ${s.endpoint.instance}) left out: ${s.reason}`) }
}

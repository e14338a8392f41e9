// The standard gRPC health service (grpc.health.v1.Health, gRPC's health-checking protocol) on every
// server mesh.grpc.server() makes: gRPC's /readyz. SERVING while the mesh is ready (config loaded,
// registered) and not draining, NOT_SERVING otherwise, for "" (the server) and for each service the
// server holds; an unknown name is NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch). Like /healthz and
// /readyz it is answered before the inbound stack (no shedding, no authorization, no metrics), and
// `inbound.health: false` turns it off. A server that adds its own grpc.health.v1.Health (say from
// grpc-health-check) replaces this one.
//
// The two messages are one field each, so they are encoded here rather than pulling a protobuf
// runtime into every install: HealthCheckRequest { string service = 1 }, HealthCheckResponse
// { ServingStatus status = 1 }.
import type { Server, ServerUnaryCall, ServerWritableStream, ServiceDefinition, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js'
import type { GrpcModule } from './load.js'

export const HEALTH_SERVICE = 'grpc.health.v1.Health'
export const HEALTH_PATH_PREFIX = `/${HEALTH_SERVICE}/`

export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const

/** How often a Watch looks at readiness (drain is told at once). */
const WATCH_POLL_MS = 1000
/** A service name longer than this is not one the server holds: no need to read it all. */
const MAX_SERVICE_NAME = 1024

/** HealthCheckRequest → its service name; unknown fields are skipped, a malformed message throws. */
export function decodeHealthRequest(buf: Buffer): string {
  let service = ''
  let i = 0
  const varint = (): number => {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= buf.length) throw new Error('truncated varint')
      const b = buf[i++]!
      value += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return value
    }
    throw new Error('varint too long')
  }
  while (i < buf.length) {
    const key = varint()
    const field = Math.floor(key / 8)
    const wire = key & 7
    if (wire === 0) varint()
    else if (wire === 1 || wire === 5) i += wire === 1 ? 8 : 4
    else if (wire === 2) {
      const len = varint()
      if (i + len > buf.length) throw new Error('truncated field')
      if (field === 1) service = len > MAX_SERVICE_NAME ? '\u0000' : buf.toString('utf8', i, i + len)
      i += len
    } else throw new Error(`unsupported wire type ${wire}`)
    if (i > buf.length) throw new Error('truncated field')
  }
  return service
}

/** HealthCheckResponse for a status (all fit one varint byte). */
export function encodeHealthResponse(status: number): Buffer {
  return status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status])
}

const method = (name: string, responseStream: boolean) => ({
  path: `${HEALTH_PATH_PREFIX}${name}`,
  requestStream: false,
  responseStream,
  // An object, not the bare name: grpc-js takes a falsy request ("") for a missing one.
  requestSerialize: (r: { service?: string }) => encodeHealthRequest(r.service ?? ''),
  requestDeserialize: (buf: Buffer) => ({ service: decodeHealthRequest(buf) }),
  responseSerialize: (r: { status: number }) => encodeHealthResponse(r.status),
  responseDeserialize: (buf: Buffer) => ({ status: buf.length >= 2 ? buf[1]! : 0 }),
})

/** HealthCheckRequest for a service name (what a client sends). */
export function encodeHealthRequest(service: string): Buffer {
  return service === '' ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varintBytes(Buffer.byteLength(service)), Buffer.from(service)])
}

function varintBytes(n: number): Buffer {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Buffer.from(out)
}

export const HEALTH_DEFINITION: ServiceDefinition = { Check: method('Check', false), Watch: method('Watch', true) } as unknown as ServiceDefinition

export interface HealthSource {
  /** Ready and not draining. */
  serving(): boolean
  /** Calls `fn` when serving may have changed (drain began); returns the unsubscribe. */
  onChange(fn: () => void): () => void
}

/**
 * Installs the health service on `server` and keeps the names of the services added after it;
 * a grpc.health.v1.Health the application adds replaces it.
 */
export function installHealth(grpc: GrpcModule, server: Server, source: HealthSource): void {
  const services = new Set<string>([''])
  const statusOf = (service: string): number | undefined =>
    services.has(service) ? (source.serving() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING) : undefined
  const impl: UntypedServiceImplementation = {
    Check(call: ServerUnaryCall<{ service: string }, unknown>, cb: sendUnaryData<unknown>) {
      const status = statusOf(call.request.service)
      if (status === undefined) cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service.slice(0, 200))}` })
      else cb(null, { status })
    },
    Watch(call: ServerWritableStream<{ service: string }, unknown>) {
      let last: number | undefined
      const send = (): void => {
        const status = statusOf(call.request.service) ?? ServingStatus.SERVICE_UNKNOWN
        if (status !== last) call.write({ status })
        last = status
      }
      send()
      const timer = setInterval(send, WATCH_POLL_MS)
      timer.unref()
      let unsubscribe = (): void => {}
      const stop = (end: boolean): void => {
        clearInterval(timer)
        unsubscribe()
        if (end) call.end()
      }
      unsubscribe = source.onChange(() => {
        send()
        // Draining: the last word is NOT_SERVING, then the stream ends before the server closes.
        if (!source.serving()) stop(true)
      })
      call.on('cancelled', () => stop(false))
    },
  }
  server.addService(HEALTH_DEFINITION, impl)
  let ours = true
  const addService = server.addService.bind(server)
  server.addService = (service: ServiceDefinition, implementation: UntypedServiceImplementation): void => {
    const paths = Object.values(service).map((m) => m.path)
    if (ours && paths.some((p) => p.startsWith(HEALTH_PATH_PREFIX))) {
      server.removeService(HEALTH_DEFINITION)
      ours = false
    }
    addService(service, implementation)
    for (const p of paths) services.add(p.slice(1, p.lastIndexOf('/')))
  }
}

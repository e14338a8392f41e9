// Validates a Service resource's spec into fully-defaulted ServiceSettings.
import { GRPC_STATUS_WORDS } from '../errors/grpc-status.js'
import { isIP } from 'node:net'
import { splitHostPort } from '../util/host-port.js'
import type { Checker, Obj } from './checker.js'
import { DEFAULTS } from './defaults.js'
import type { DnsSpec, EndpointSpec, LbPolicy, PathSeg, RetrySettings, ServiceSettings } from './types.js'

const LB_POLICIES: readonly LbPolicy[] = ['p2c-ewma', 'round-robin', 'least-request', 'ring-hash']
const RETRY_ON_WORDS = ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx']
/** gRPC statuses a retryOn list may name (Envoy's x-envoy-retry-grpc-on words). */
const GRPC_RETRY_ON: Record<string, number> = Object.fromEntries([1, 4, 8, 13, 14].map((code) => [GRPC_STATUS_WORDS[code]!, code]))

export function validateService(c: Checker, name: string, namespace: string, specIn: unknown): ServiceSettings | undefined {
  const p = ['spec']
  const spec = c.object(specIn ?? {}, p, ['protocol', 'endpoints', 'dns', 'loadBalancer', 'timeout', 'retries', 'circuitBreaker', 'outlierDetection', 'concurrencyLimit'])
  if (!spec) return undefined
  const protocol = (c.string(spec.protocol, [...p, 'protocol'], { oneOf: ['http', 'grpc'] }) ?? 'http') as 'http' | 'grpc'

  const endpoints: EndpointSpec[] = []
  const list = c.array(spec.endpoints, [...p, 'endpoints']) ?? []
  list.forEach((item, i) => {
    const ep = c.object(item, [...p, 'endpoints', i], ['address', 'labels', 'mtls'])
    if (!ep) return
    const address = c.string(ep.address, [...p, 'endpoints', i, 'address'], { required: true })
    const labels = c.labels(ep.labels, [...p, 'endpoints', i, 'labels']) ?? {}
    if (ep.mtls !== undefined && typeof ep.mtls !== 'boolean') c.error([...p, 'endpoints', i, 'mtls'], 'must be true or false')
    if (address === undefined) return
    const hp = splitHostPort(address)
    if (!hp) return c.error([...p, 'endpoints', i, 'address'], `must be host:port (got "${address}")`)
    if (endpoints.some((e) => e.address === address)) return c.error([...p, 'endpoints', i, 'address'], `duplicate endpoint ${address}`, 'WEFT_E_DUPLICATE')
    endpoints.push({ address, host: hp.host, port: hp.port, labels, ...(ep.mtls === true ? { mtls: true } : {}) })
  })

  const dns = validateDns(c, spec.dns, [...p, 'dns'])
  if (dns && list.length > 0) c.error([...p, 'dns'], 'use either static endpoints or dns, not both')

  const lbIn = c.object(spec.loadBalancer, [...p, 'loadBalancer'], ['policy', 'hashOn', 'ewmaDecay', 'locality'])
  const policy = (c.string(lbIn?.policy, [...p, 'loadBalancer', 'policy'], { oneOf: LB_POLICIES }) ?? 'p2c-ewma') as LbPolicy
  const hashOnIn = c.object(lbIn?.hashOn, [...p, 'loadBalancer', 'hashOn'], ['header'])
  const hashHeader = c.string(hashOnIn?.header, [...p, 'loadBalancer', 'hashOn', 'header'], { required: hashOnIn !== undefined })
  if (policy === 'ring-hash' && !hashHeader) c.error([...p, 'loadBalancer', 'hashOn'], 'ring-hash needs hashOn: { header: NAME }', 'WEFT_E_FIELD_REQUIRED')
  const locIn = c.object(lbIn?.locality, [...p, 'loadBalancer', 'locality'], ['enabled', 'minHealthyPercent'])

  const cbIn = c.object(spec.circuitBreaker, [...p, 'circuitBreaker'], ['enabled', 'consecutiveFailures', 'halfOpenAfter'])
  const odIn = c.object(spec.outlierDetection, [...p, 'outlierDetection'], ['enabled', 'consecutive5xx', 'baseEjectionTime', 'maxEjectionTime', 'maxEjectionPercent', 'panicThreshold'])
  const od = DEFAULTS.outlierDetection

  return {
    name,
    namespace,
    protocol,
    endpoints,
    dns,
    loadBalancer: {
      policy,
      hashOn: hashHeader ? { header: hashHeader.toLowerCase() } : undefined,
      ewmaDecayMs: c.duration(lbIn?.ewmaDecay, [...p, 'loadBalancer', 'ewmaDecay'], { min: 1 }) ?? DEFAULTS.ewmaDecayMs,
      locality: {
        enabled: c.boolean(locIn?.enabled, [...p, 'loadBalancer', 'locality', 'enabled']) ?? true,
        minHealthyPercent: c.number(locIn?.minHealthyPercent, [...p, 'loadBalancer', 'locality', 'minHealthyPercent'], { min: 0, max: 100 }) ?? DEFAULTS.localityMinHealthyPercent,
      },
    },
    timeoutMs: c.duration(spec.timeout, [...p, 'timeout'], { min: 1 }) ?? DEFAULTS.timeoutMs,
    retries: validateRetries(c, spec.retries, [...p, 'retries'], undefined),
    circuitBreaker: {
      enabled: c.boolean(cbIn?.enabled, [...p, 'circuitBreaker', 'enabled']) ?? true,
      consecutiveFailures: c.number(cbIn?.consecutiveFailures, [...p, 'circuitBreaker', 'consecutiveFailures'], { min: 1, integer: true }) ?? DEFAULTS.circuitBreaker.consecutiveFailures,
      halfOpenAfterMs: c.duration(cbIn?.halfOpenAfter, [...p, 'circuitBreaker', 'halfOpenAfter'], { min: 1 }) ?? DEFAULTS.circuitBreaker.halfOpenAfterMs,
    },
    outlierDetection: {
      enabled: c.boolean(odIn?.enabled, [...p, 'outlierDetection', 'enabled']) ?? true,
      consecutive5xx: c.number(odIn?.consecutive5xx, [...p, 'outlierDetection', 'consecutive5xx'], { min: 1, integer: true }) ?? od.consecutive5xx,
      baseEjectionTimeMs: c.duration(odIn?.baseEjectionTime, [...p, 'outlierDetection', 'baseEjectionTime'], { min: 1 }) ?? od.baseEjectionTimeMs,
      maxEjectionTimeMs: c.duration(odIn?.maxEjectionTime, [...p, 'outlierDetection', 'maxEjectionTime'], { min: 1 }) ?? od.maxEjectionTimeMs,
      maxEjectionPercent: c.number(odIn?.maxEjectionPercent, [...p, 'outlierDetection', 'maxEjectionPercent'], { min: 0, max: 100 }) ?? od.maxEjectionPercent,
      panicThresholdPercent: c.number(odIn?.panicThreshold, [...p, 'outlierDetection', 'panicThreshold'], { min: 0, max: 100 }) ?? od.panicThresholdPercent,
    },
    concurrencyLimit: c.number(spec.concurrencyLimit, [...p, 'concurrencyLimit'], { min: 1, integer: true }) ?? DEFAULTS.concurrencyLimit,
  }
}

function validateDns(c: Checker, value: unknown, p: PathSeg[]): DnsSpec | undefined {
  const dns = c.object(value, p, ['host', 'port', 'srv', 'servers', 'refreshInterval'])
  if (!dns) return undefined
  const host = c.string(dns.host, [...p, 'host'])
  const srv = c.string(dns.srv, [...p, 'srv'])
  const port = c.number(dns.port, [...p, 'port'], { min: 1, max: 65535, integer: true })
  if (!host === !srv) c.error(p, 'needs exactly one of host (A/AAAA, with port) or srv', 'WEFT_E_FIELD_REQUIRED')
  if (host && port === undefined) c.error([...p, 'port'], 'is required with dns.host', 'WEFT_E_FIELD_REQUIRED')
  const servers: string[] = []
  ;(c.array(dns.servers, [...p, 'servers']) ?? []).forEach((s, i) => {
    const v = c.string(s, [...p, 'servers', i])
    if (v === undefined) return
    if (!isIP(v) && !splitHostPort(v, true)) return c.error([...p, 'servers', i], `must be an IP or IP:port (got "${v}")`)
    servers.push(v)
  })
  return {
    host, port, srv,
    servers: servers.length ? servers : undefined,
    refreshMs: c.duration(dns.refreshInterval, [...p, 'refreshInterval'], { min: 100 }) ?? DEFAULTS.dnsRefreshMs,
  }
}

/** Retries for a Service, or a Route rule's override merged over the service's (`base`). */
export function validateRetries(c: Checker, value: unknown, p: PathSeg[], base: RetrySettings | undefined): RetrySettings {
  const r = c.object(value, p, ['attempts', 'perTryTimeout', 'retryOn', 'budget', 'backoff', 'idempotencyKey']) ?? ({} as Obj)
  const d = DEFAULTS.retries
  const budget = c.object(r.budget, [...p, 'budget'], ['ratio', 'minPerSecond', 'ttl'])
  const backoff = c.object(r.backoff, [...p, 'backoff'], ['base', 'max'])
  const retryOn = r.retryOn === undefined ? (base?.retryOn ?? [...d.retryOn]) : parseRetryOn(c, r.retryOn, [...p, 'retryOn'])
  const statuses = new Set<number>()
  for (const word of retryOn) {
    if (word === 'gateway-error') [502, 503, 504].forEach((s) => statuses.add(s))
    else if (word === '5xx') for (let s = 500; s < 600; s++) statuses.add(s)
    else if (/^\d{3}$/.test(word)) statuses.add(Number(word))
  }
  const grpcCodes = new Set(retryOn.filter((w) => w in GRPC_RETRY_ON).map((w) => GRPC_RETRY_ON[w]!))
  const out: RetrySettings = {
    attempts: c.number(r.attempts, [...p, 'attempts'], { min: 0, max: 10, integer: true }) ?? base?.attempts ?? d.attempts,
    perTryTimeoutMs: c.duration(r.perTryTimeout, [...p, 'perTryTimeout'], { min: 1 }) ?? base?.perTryTimeoutMs,
    retryOn,
    retryOnConnectFailure: retryOn.includes('connect-failure') || retryOn.includes('5xx') || retryOn.includes('gateway-error'),
    retryOnReset: retryOn.includes('reset') || retryOn.includes('5xx'),
    retryOnTimeout: retryOn.includes('timeout') || retryOn.includes('5xx') || retryOn.includes('gateway-error'),
    retryOnStatus: statuses,
    // A list that names no gRPC status keeps gRPC's usual retry condition, UNAVAILABLE.
    retryOnGrpc: grpcCodes.size ? grpcCodes : new Set([GRPC_RETRY_ON.unavailable!]),
    budget: {
      ratio: c.number(budget?.ratio, [...p, 'budget', 'ratio'], { min: 0, max: 1 }) ?? base?.budget.ratio ?? d.budget.ratio,
      minPerSecond: c.number(budget?.minPerSecond, [...p, 'budget', 'minPerSecond'], { min: 0 }) ?? base?.budget.minPerSecond ?? d.budget.minPerSecond,
      ttlMs: c.duration(budget?.ttl, [...p, 'budget', 'ttl'], { min: 1000 }) ?? base?.budget.ttlMs ?? d.budget.ttlMs,
    },
    backoff: {
      baseMs: c.duration(backoff?.base, [...p, 'backoff', 'base']) ?? base?.backoff.baseMs ?? d.backoff.baseMs,
      maxMs: c.duration(backoff?.max, [...p, 'backoff', 'max']) ?? base?.backoff.maxMs ?? d.backoff.maxMs,
    },
    idempotencyKey: (c.string(r.idempotencyKey, [...p, 'idempotencyKey'], { oneOf: ['none', 'auto'] }) ?? base?.idempotencyKey ?? 'none') as 'none' | 'auto',
  }
  if (out.backoff.maxMs < out.backoff.baseMs) c.error([...p, 'backoff', 'max'], `must be ≥ backoff.base (${out.backoff.baseMs}ms)`)
  return out
}

function parseRetryOn(c: Checker, value: unknown, p: PathSeg[]): string[] {
  const list = c.array(value, p) ?? []
  const out: string[] = []
  list.forEach((item, i) => {
    const word = String(item)
    if (RETRY_ON_WORDS.includes(word) || word in GRPC_RETRY_ON || (/^\d{3}$/.test(word) && Number(word) >= 400 && Number(word) < 600)) out.push(word)
    else c.error([...p, i], `unknown retry condition "${word}" (use ${RETRY_ON_WORDS.join(', ')}, a 4xx/5xx status, or for gRPC ${Object.keys(GRPC_RETRY_ON).join(', ')})`)
  })
  return out
}

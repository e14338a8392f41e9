// DNS discovery: A/AAAA (host + port) or SRV records, re-resolved at least every refresh interval
// and no sooner than the records' TTL allows (floor 1 s). A failed lookup keeps the last answer.
import { isIP } from 'node:net'
import { Resolver } from 'node:dns/promises'
import type { DnsSpec, EndpointSpec } from '../config/types.js'
import { formatHostPort } from '../util/host-port.js'
import type { Logger } from '../util/logger.js'

const MIN_REFRESH_MS = 1000
const RETRY_AFTER_FAILURE_MS = 5000
/** Lookup errors that mean the name (or its records) no longer exists, rather than a failure. */
const GONE = new Set(['ENOTFOUND', 'ENODATA'])

export interface DnsAnswer {
  endpoints: EndpointSpec[]
  /** Smallest TTL seen (seconds), when the records carried one. */
  ttlSeconds?: number
}

export class DnsDiscovery {
  private readonly resolver: Resolver
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private failing = false
  lookups = 0
  /** Addresses of each SRV target in the last answer, kept through a target's transient failure. */
  private lastTargets = new Map<string, string[]>()

  constructor(
    private readonly service: string,
    readonly spec: DnsSpec,
    private readonly onEndpoints: (endpoints: EndpointSpec[]) => void,
    private readonly logger: Logger,
    defaultServers?: string[],
  ) {
    this.resolver = new Resolver({ timeout: 2000, tries: 2 })
    const servers = spec.servers ?? defaultServers
    if (servers?.length) this.resolver.setServers(servers)
  }

  /** Resolves once now; later lookups run on their own timer (unref'd). */
  async start(): Promise<void> {
    await this.refresh()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.resolver.cancel()
  }

  async refresh(): Promise<void> {
    if (this.stopped) return
    let delay: number
    try {
      this.lookups++
      const answer = await this.resolve()
      if (this.stopped) return
      if (this.failing) this.logger.info(`dns discovery for ${this.service} recovered`, { endpoints: answer.endpoints.length })
      this.failing = false
      this.onEndpoints(answer.endpoints)
      const ttlMs = answer.ttlSeconds === undefined ? this.spec.refreshMs : answer.ttlSeconds * 1000
      delay = Math.max(MIN_REFRESH_MS, Math.min(this.spec.refreshMs, ttlMs))
    } catch (err) {
      if (this.stopped) return
      if (!this.failing) this.logger.warn(`dns discovery for ${this.service} failed; keeping the last endpoints`, { error: (err as Error).message })
      this.failing = true
      delay = Math.min(this.spec.refreshMs, RETRY_AFTER_FAILURE_MS)
    }
    this.timer = setTimeout(() => void this.refresh(), delay)
    this.timer.unref()
  }

  private async resolve(): Promise<DnsAnswer> {
    if (this.spec.srv) {
      const records = await this.resolver.resolveSrv(this.spec.srv)
      // Targets are looked up together. A target whose lookup fails keeps its last addresses when
      // the failure may be transient, and is left out when its name is gone (NXDOMAIN/NODATA);
      // only when no target has addresses is the whole lookup a failure (keeping the last answer).
      const lookups = await Promise.allSettled(records.map((r) => this.addresses(r.name)))
      const endpoints: EndpointSpec[] = []
      const targets = new Map<string, string[]>()
      let ttl: number | undefined
      let failure: unknown
      for (const [i, r] of records.entries()) {
        const result = lookups[i]!
        let ips: string[]
        if (result.status === 'fulfilled') {
          ips = result.value.ips
          if (result.value.ttl !== undefined) ttl = ttl === undefined ? result.value.ttl : Math.min(ttl, result.value.ttl)
        } else {
          failure ??= result.reason
          const last = GONE.has((result.reason as NodeJS.ErrnoException)?.code ?? '') ? undefined : this.lastTargets.get(r.name)
          if (!last) continue
          ips = last
          ttl = Math.min(ttl ?? Infinity, RETRY_AFTER_FAILURE_MS / 1000) // look again as after a failure
        }
        targets.set(r.name, ips)
        for (const ip of ips) {
          const address = formatHostPort(ip, r.port)
          if (!endpoints.some((e) => e.address === address)) {
            endpoints.push({ address, host: ip, port: r.port, labels: { srvPriority: String(r.priority), srvWeight: String(r.weight) } })
          }
        }
      }
      if (endpoints.length === 0 && failure !== undefined) throw failure
      this.lastTargets = targets
      return { endpoints, ttlSeconds: ttl }
    }
    const hosts = await this.addresses(this.spec.host!)
    const port = this.spec.port!
    return {
      endpoints: hosts.ips.map((ip) => ({ address: formatHostPort(ip, port), host: ip, port, labels: {} })),
      ttlSeconds: hosts.ttl,
    }
  }

  /** A and AAAA records of a name; one family missing is fine, both missing is an error. */
  private async addresses(name: string): Promise<{ ips: string[]; ttl?: number }> {
    if (isIP(name)) return { ips: [name] }
    const [v4, v6] = await Promise.allSettled([
      this.resolver.resolve4(name, { ttl: true }),
      this.resolver.resolve6(name, { ttl: true }),
    ])
    const records = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])]
    if (records.length === 0) {
      // Report a failure over "no such records" (ENOTFOUND/ENODATA), so a timeout is not taken for a gone name.
      const reasons = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as NodeJS.ErrnoException] : []))
      throw reasons.find((e) => !GONE.has(e?.code ?? '')) ?? reasons[0] ?? Object.assign(new Error(`no A/AAAA records for ${name}`), { code: 'ENODATA' })
    }
    return { ips: records.map((r) => r.address), ttl: Math.min(...records.map((r) => r.ttl)) }
  }
}

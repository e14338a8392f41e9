// DNS discovery: A/AAAA (host + port) or SRV records, re-resolved at least every refresh interval
// and no sooner than the records' TTL allows (floor 1 s). A failed lookup keeps the last answer.
import { isIP } from 'node:net'
import { Resolver } from 'node:dns/promises'
import type { DnsSpec, EndpointSpec } from '../config/types.js'
import type { Logger } from '../util/logger.js'

const MIN_REFRESH_MS = 1000
const RETRY_AFTER_FAILURE_MS = 5000

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
  /** When the next lookup is due (ms since epoch), for explain/status output. */
  nextAt = 0
  lookups = 0

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
    this.nextAt = Date.now() + delay
    this.timer = setTimeout(() => void this.refresh(), delay)
    this.timer.unref()
  }

  private async resolve(): Promise<DnsAnswer> {
    if (this.spec.srv) {
      const records = await this.resolver.resolveSrv(this.spec.srv)
      const endpoints: EndpointSpec[] = []
      let ttl: number | undefined
      for (const r of records) {
        const hosts = await this.addresses(r.name)
        if (hosts.ttl !== undefined) ttl = ttl === undefined ? hosts.ttl : Math.min(ttl, hosts.ttl)
        for (const ip of hosts.ips) {
          const address = `${ip.includes(':') ? `[${ip}]` : ip}:${r.port}`
          if (!endpoints.some((e) => e.address === address)) {
            endpoints.push({ address, host: ip, port: r.port, labels: { srvPriority: String(r.priority), srvWeight: String(r.weight) } })
          }
        }
      }
      return { endpoints, ttlSeconds: ttl }
    }
    const hosts = await this.addresses(this.spec.host!)
    const port = this.spec.port!
    return {
      endpoints: hosts.ips.map((ip) => ({ address: `${ip.includes(':') ? `[${ip}]` : ip}:${port}`, host: ip, port, labels: {} })),
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
      const reason = v4.status === 'rejected' ? v4.reason : v6.status === 'rejected' ? v6.reason : new Error(`no A/AAAA records for ${name}`)
      throw reason
    }
    return { ips: records.map((r) => r.address), ttl: Math.min(...records.map((r) => r.ttl)) }
  }
}

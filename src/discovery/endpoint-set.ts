// ServiceEndpoints: every endpoint of one service, kept across config versions and discovery
// refreshes (so load and ejection state survive), with cached subset groups for the balancers.
import type { EndpointSpec } from '../config/types.js'
import { Endpoint } from './endpoint.js'
import type { OutlierDetector } from '../resilience/outlier.js'

export interface GroupOptions {
  panicThresholdPercent: number
  locality: { enabled: boolean; minHealthyPercent: number; zone?: string }
}

/** The endpoints of one subset (a label selector), and those a balancer may pick right now. */
export class EndpointGroup {
  members: Endpoint[] = []
  /** Healthy members (or all of them in panic mode), narrowed to the caller's zone when it can. */
  candidates: Endpoint[] = []
  panic = false
  /** Free per-group state for balancers (round-robin cursor, hash ring). */
  rr = 0
  ring: { hashes: Uint32Array; endpoints: Endpoint[] } | undefined
  version = -1

  constructor(
    readonly selector: Readonly<Record<string, string>>,
    /** The service's endpoints this group selects from (its owner: pools and identity are the owner's). */
    readonly set: ServiceEndpoints,
  ) {}

  /** Current candidates; recomputed only when membership or health changed. */
  current(now: number): Endpoint[] {
    this.set.tick(now)
    if (this.version !== this.set.version) this.refresh(now)
    return this.candidates
  }

  private refresh(now: number): void {
    const opts = this.set.options
    const keys = Object.keys(this.selector)
    this.members = this.set.list().filter((e) => keys.every((k) => e.labels[k] === this.selector[k]))
    const healthy = this.members.filter((e) => e.ejectedUntil <= now)
    this.panic = this.members.length > 0 && (healthy.length * 100) / this.members.length < opts.panicThresholdPercent
    let pool = this.panic ? this.members : healthy
    if (!this.panic) pool = lowestPriority(pool)
    const zone = opts.locality.zone
    if (opts.locality.enabled && zone !== undefined) {
      const localMembers = this.members.filter((e) => e.zone === zone)
      const localPool = pool.filter((e) => e.zone === zone)
      if (localPool.length > 0 && (localPool.length * 100) / localMembers.length >= opts.locality.minHealthyPercent) {
        pool = localPool
      }
    }
    this.candidates = pool
    this.ring = undefined
    this.version = this.set.version
  }
}

export class ServiceEndpoints {
  /** Bumped on any membership or health change; groups compare it to know when to refresh. */
  version = 0
  private byAddress = new Map<string, Endpoint>()
  private ordered: Endpoint[] = []
  private groups = new Map<string, EndpointGroup>()
  private nextReturnAt = Infinity
  /** The owning service's outlier detection (set by its ServiceRuntime): another route's backend reports here. */
  detector: OutlierDetector | undefined = undefined

  constructor(
    readonly service: string,
    public options: GroupOptions,
    private readonly onRemoved: (e: Endpoint) => void = () => {},
  ) {}

  list(): Endpoint[] {
    return this.ordered
  }

  get size(): number {
    return this.ordered.length
  }

  /** Replaces membership, keeping the state of endpoints whose address and labels are unchanged. */
  update(specs: readonly EndpointSpec[]): boolean {
    const next = new Map<string, Endpoint>()
    let changed = specs.length !== this.byAddress.size
    for (const s of specs) {
      const prev = this.byAddress.get(s.address)
      if (prev && prev.mtls === (s.mtls === true) && sameLabels(prev.labels, s.labels)) next.set(s.address, prev)
      else {
        next.set(s.address, new Endpoint(s.address, s.host, s.port, { ...s.labels }, s.mtls === true))
        changed = true
      }
    }
    for (const [addr, e] of this.byAddress) {
      if (next.get(addr) !== e) {
        e.removed = true
        this.onRemoved(e)
      }
    }
    this.byAddress = next
    this.ordered = [...next.values()]
    if (changed) this.version++
    return changed
  }

  setOptions(options: GroupOptions): void {
    this.options = options
    this.version++
  }

  group(selector: Readonly<Record<string, string>>): EndpointGroup {
    const key = Object.keys(selector).sort().map((k) => `${k}=${selector[k]}`).join(',')
    let g = this.groups.get(key)
    if (!g) this.groups.set(key, (g = new EndpointGroup(selector, this)))
    return g
  }

  /** Marks a health change (ejection) and schedules its end. */
  markEjected(e: Endpoint): void {
    if (e.ejectedUntil < this.nextReturnAt) this.nextReturnAt = e.ejectedUntil
    this.version++
  }

  /** Returns endpoints whose ejection has ended; cheap when nothing is due. */
  tick(now: number): void {
    if (now < this.nextReturnAt) return
    let next = Infinity
    for (const e of this.ordered) {
      if (e.ejectedUntil === 0) continue
      if (e.ejectedUntil <= now) e.ejectedUntil = 0
      else if (e.ejectedUntil < next) next = e.ejectedUntil
    }
    this.nextReturnAt = next
    this.version++
  }

  ejectedCount(now: number): number {
    let n = 0
    for (const e of this.ordered) if (e.ejectedUntil > now) n++
    return n
  }

  close(): void {
    for (const e of this.ordered) {
      e.removed = true
      this.onRemoved(e)
    }
    this.byAddress.clear()
    this.ordered = []
    this.version++
  }
}

/**
 * SRV priorities (RFC 2782): only the lowest-numbered priority that has a healthy endpoint gets
 * traffic; the next one takes over when all of those are ejected. Endpoints without the label
 * (static, A/AAAA) are all priority 0.
 */
function lowestPriority(pool: Endpoint[]): Endpoint[] {
  let best = Infinity
  let mixed = false
  for (const e of pool) {
    const p = e.labels.srvPriority === undefined ? 0 : Number(e.labels.srvPriority)
    if (best !== Infinity && p !== best) mixed = true
    if (p < best) best = p
  }
  if (!mixed) return pool
  return pool.filter((e) => (e.labels.srvPriority === undefined ? 0 : Number(e.labels.srvPriority)) === best)
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k])
}

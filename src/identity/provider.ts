// IdentityProvider: this instance's X509-SVID. It makes the key (which never leaves the process),
// asks its source (the control daemon) to sign a CSR, and renews at half-life with jitter so a
// fleet never renews at once (Istio's agent does the same). Listeners get every new certificate or
// trust bundle; servers swap their secure context and new client connections take the new one.
import { EventEmitter } from 'node:events'
import type { Logger } from '../util/logger.js'
import { createCsr, generateKeyPair, type KeyPairPem } from './keys.js'
import { newerBundle, type TrustBundle } from './bundle.js'

/** What a signed SVID comes back as. */
export interface SignedSvid {
  /** Leaf first, then intermediates (not the root). */
  certChainPem: string[]
  bundle: TrustBundle
  /** Epoch ms. */
  notAfter: number
  notBefore: number
}

/** Who signs: the control daemon (POST /v1/instances/:id/svid). */
export interface SvidSource {
  sign(csrPem: string): Promise<SignedSvid>
}

/** The material a TLS context is built from; a new object on every change (identity-compared). */
export interface IdentityMaterial {
  readonly id: string
  readonly certChainPem: readonly string[]
  readonly keyPem: string
  readonly bundle: TrustBundle
  readonly notBefore: number
  readonly notAfter: number
}

export interface ProviderOptions {
  /** This workload's SPIFFE ID (the daemon decides; the CSR asks for it). */
  id: string
  source: SvidSource
  logger: Logger
  /** Renew when this share of the lifetime has passed, minus jitter. Default 0.5. */
  renewAt?: number
  /** Up to this share of the lifetime is taken off the renewal time at random. Default 0.1. */
  jitter?: number
  /** Failed renewals retry with full jitter between these bounds. Defaults 1 s and 60 s. */
  retryBaseMs?: number
  retryMaxMs?: number
  /** After a new root is added, renew within this long (at random). Default 3000. */
  rotationJitterMs?: number
  /** Clock (tests). */
  now?: () => number
}

export class IdentityProvider extends EventEmitter {
  private material: IdentityMaterial | undefined
  private timer: NodeJS.Timeout | undefined
  private failures = 0
  private closed = false
  private lastFailureLog = 0
  private inFlight: Promise<IdentityMaterial | undefined> | undefined
  private nextAt: number | undefined
  private expiry: NodeJS.Timeout | undefined

  constructor(private readonly o: ProviderOptions) {
    super()
  }

  get id(): string {
    return this.o.id
  }

  /** When the next renewal (or retry) is due, epoch ms; undefined when none is scheduled. */
  get nextRenewalAt(): number | undefined {
    return this.nextAt
  }

  /** The certificate in use; undefined before the first one and after it expired unrenewed. */
  current(): IdentityMaterial | undefined {
    const m = this.material
    if (m && m.notAfter <= this.now()) {
      this.material = undefined
      this.o.logger.error(`identity ${this.o.id}: certificate expired at ${new Date(m.notAfter).toISOString()} without renewal; mTLS refused until the daemon signs a new one`)
      this.emit('update', undefined)
      return undefined
    }
    return m
  }

  /** Gets the first certificate (resolves undefined on failure; renewal keeps trying). */
  start(): Promise<IdentityMaterial | undefined> {
    return this.renew()
  }

  /** Asks for a new certificate now (one at a time); the schedule follows the new lifetime. */
  renew(): Promise<IdentityMaterial | undefined> {
    return (this.inFlight ??= this.doRenew().finally(() => {
      this.inFlight = undefined
    }))
  }

  private async doRenew(): Promise<IdentityMaterial | undefined> {
    if (this.closed) return this.material
    try {
      // A new key with every certificate: a key that leaked stops being useful at the next renewal.
      const keys: KeyPairPem = await generateKeyPair()
      const csr = await createCsr(keys, this.o.id)
      const signed = await this.o.source.sign(csr)
      if (this.closed) return this.material
      const bundle = this.material ? (newerBundle(this.material.bundle, signed.bundle) ?? this.material.bundle) : signed.bundle
      this.material = { id: this.o.id, certChainPem: signed.certChainPem, keyPem: keys.privateKeyPem, bundle, notBefore: signed.notBefore, notAfter: signed.notAfter }
      this.failures = 0
      this.schedule(this.renewDelay(signed))
      // At expiry the certificate is dropped and listeners told, renewed or not (fail closed).
      clearTimeout(this.expiry)
      this.expiry = setTimeout(() => this.current(), Math.min(2 ** 31 - 1, Math.max(0, signed.notAfter - this.now()) + 1))
      this.expiry.unref()
      this.emit('update', this.material)
      return this.material
    } catch (err) {
      this.failures++
      const delay = Math.random() * Math.min(this.o.retryMaxMs ?? 60_000, (this.o.retryBaseMs ?? 1000) * 2 ** Math.min(this.failures - 1, 16))
      const t = this.now()
      if (t - this.lastFailureLog >= 60_000) {
        this.lastFailureLog = t
        const left = this.material ? `; the current certificate is valid until ${new Date(this.material.notAfter).toISOString()}` : '; no certificate yet'
        this.o.logger.warn(`identity ${this.o.id}: certificate request failed (${(err as Error).message}), retrying${left}`)
      }
      this.schedule(delay)
      return this.material
    }
  }

  /**
   * A trust bundle pushed by the daemon (rotation): taken when its sequence is newer. A bundle that
   * adds a root means the CA now signs with it: renew soon (at a random moment within
   * `rotationJitterMs`, so the fleet does not arrive at once), so that the old root can be retired
   * without waiting for half-lives (RELIABILITY M8/M9).
   */
  updateBundle(bundle: TrustBundle): void {
    const m = this.material
    if (!m) return
    const next = newerBundle(m.bundle, bundle)
    if (!next) return
    const added = next.roots.some((r) => !m.bundle.roots.includes(r))
    this.material = { ...m, bundle: next }
    this.emit('update', this.material)
    if (added) this.schedule(Math.random() * (this.o.rotationJitterMs ?? 3000))
  }

  /**
   * Half-life minus up to 10 % of the lifetime at random (F12: spread over the fleet). The life is
   * counted from now, not from notBefore: the CA backdates notBefore for clock skew, and a short
   * test lifetime would otherwise put half-life past the expiry.
   */
  private renewDelay(s: SignedSvid): number {
    const now = this.now()
    const life = Math.max(0, s.notAfter - Math.max(now, s.notBefore))
    const delay = life * (this.o.renewAt ?? 0.5) - Math.random() * life * (this.o.jitter ?? 0.1)
    return Math.max(Math.min(1000, life / 4), delay)
  }

  private schedule(ms: number): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.nextAt = this.now() + ms
    // setTimeout holds at most 2^31-1 ms (~24.8 days); longer waits are re-armed.
    const capped = Math.min(ms, 2 ** 31 - 1)
    this.timer = setTimeout(() => {
      if (capped < ms) this.schedule(ms - capped)
      else void this.renew()
    }, capped)
    this.timer.unref()
  }

  private now(): number {
    return (this.o.now ?? Date.now)()
  }

  close(): void {
    this.closed = true
    this.nextAt = undefined
    clearTimeout(this.timer)
    clearTimeout(this.expiry)
  }
}

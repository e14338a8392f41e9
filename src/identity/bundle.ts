// The trust bundle: a trust domain's root certificates with a sequence that increases on every
// change (M9), so an instance can ignore a stale push (F13); and the overlap-rotation steps.
import { X509Certificate } from 'node:crypto'
import { WeftError } from '../errors/index.js'
import { validTrustDomain } from './spiffe-id.js'

/** An immutable snapshot of the roots a trust domain's certificates chain to. */
export interface TrustBundle {
  readonly trustDomain: string
  /** Increases on every change; a bundle with a lower (or equal) one never replaces a held one. */
  readonly sequence: number
  /** CA certificates as canonical PEM, in the order they were added. Never empty. */
  readonly roots: readonly string[]
}

/**
 * A validated bundle: every root must be a PEM CA certificate (duplicates are dropped).
 * @param sequence default 1.
 * @throws WeftError WEFT_ERR_INVALID_ARG naming what is wrong.
 */
export function newBundle(trustDomain: string, roots: readonly string[], sequence = 1): TrustBundle {
  validTrustDomain(trustDomain)
  if (!Number.isSafeInteger(sequence) || sequence < 0) invalid(`sequence must be a non-negative integer, got ${String(sequence)}`)
  if (!Array.isArray(roots) || roots.length === 0) invalid('roots must be a non-empty list of PEM certificates')
  const seen = new Set<string>()
  const canonical: string[] = []
  roots.forEach((pem, i) => {
    const cert = rootCertificate(pem, `roots[${i}]`)
    if (seen.has(cert.fingerprint256)) return
    seen.add(cert.fingerprint256)
    canonical.push(cert.toString())
  })
  return Object.freeze({ trustDomain, sequence, roots: Object.freeze(canonical) })
}

/**
 * Reads a bundle that came over the wire (`{ trustDomain, sequence, roots }` JSON), validated as
 * `newBundle` does. Unknown fields are refused (fail closed).
 * @throws WeftError WEFT_ERR_INVALID_ARG
 */
export function parseBundle(value: unknown): TrustBundle {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('expected an object { trustDomain, sequence, roots }')
  const v = value as Record<string, unknown>
  const unknown = Object.keys(v).filter((k) => k !== 'trustDomain' && k !== 'sequence' && k !== 'roots')
  if (unknown.length > 0) invalid(`unknown field ${unknown[0]}`)
  if (typeof v.trustDomain !== 'string') invalid('trustDomain must be a string')
  if (typeof v.sequence !== 'number') invalid('sequence must be a number')
  if (!Array.isArray(v.roots) || !v.roots.every((r) => typeof r === 'string')) invalid('roots must be a list of PEM strings')
  return newBundle(v.trustDomain, v.roots as string[], v.sequence)
}

/**
 * The bundle to hold after `incoming` arrives: `incoming` when its sequence is higher than the
 * held one's (or nothing is held), else undefined — a lower or equal sequence is a stale or
 * replayed push (F13), and a bundle for another trust domain never replaces ours.
 * @example held = newerBundle(held, pushed) ?? held
 */
export function newerBundle(current: TrustBundle | undefined, incoming: TrustBundle): TrustBundle | undefined {
  if (current === undefined) return incoming
  if (incoming.trustDomain !== current.trustDomain) return undefined
  return incoming.sequence > current.sequence ? incoming : undefined
}

/** Whether `rootPem` (any PEM formatting) is one of the bundle's roots. */
export function hasRoot(bundle: TrustBundle, rootPem: string): boolean {
  const fp = rootCertificate(rootPem, 'root').fingerprint256
  return bundle.roots.some((r) => new X509Certificate(r).fingerprint256 === fp)
}

/**
 * Rotation step 1 (`weft ca rotate`): the bundle with `rootPem` added and the sequence bumped, so
 * both roots are trusted while SVIDs are re-issued. A root already present: the same bundle.
 */
export function addRoot(bundle: TrustBundle, rootPem: string): TrustBundle {
  if (hasRoot(bundle, rootPem)) return bundle
  return newBundle(bundle.trustDomain, [...bundle.roots, rootPem], bundle.sequence + 1)
}

/**
 * Rotation step 2 (`weft ca retire`): the bundle without `rootPem`, sequence bumped; a peer still
 * presenting a certificate from it is refused once the new bundle is in the secure context.
 * A root not present: the same bundle.
 * @throws WeftError WEFT_ERR_INVALID_ARG when it is the last root (nothing would verify).
 */
export function removeRoot(bundle: TrustBundle, rootPem: string): TrustBundle {
  const fp = rootCertificate(rootPem, 'root').fingerprint256
  const kept = bundle.roots.filter((r) => new X509Certificate(r).fingerprint256 !== fp)
  if (kept.length === bundle.roots.length) return bundle
  if (kept.length === 0) invalid('cannot remove the last root of the trust bundle: add the new root first')
  return newBundle(bundle.trustDomain, kept, bundle.sequence + 1)
}

function rootCertificate(pem: unknown, where: string): X509Certificate {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) invalid(`${where} must be a PEM certificate`)
  let cert: X509Certificate
  try {
    cert = new X509Certificate(pem)
  } catch (err) {
    invalid(`${where} is not a readable certificate (${(err as Error).message})`, err)
  }
  if (!cert.ca) invalid(`${where} is not a CA certificate (basic constraints cA is not true)`)
  return cert
}

function invalid(problem: string, cause?: unknown): never {
  throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid trust bundle: ${problem}`, { cause })
}

// Consistent-hash ring (ketama style): each endpoint owns many points, so adding or losing one
// endpoint moves only its own share of keys. Built once per group refresh, searched per request.
import type { Endpoint } from '../discovery/endpoint.js'
import { hash32 } from './hash.js'

/** Points per endpoint: enough to keep shares within a few percent for small rings. */
const POINTS_PER_ENDPOINT = 160

export interface Ring {
  hashes: Uint32Array
  endpoints: Endpoint[]
}

export function buildRing(endpoints: readonly Endpoint[]): Ring {
  const points: { h: number; e: Endpoint }[] = []
  for (const e of endpoints) for (let i = 0; i < POINTS_PER_ENDPOINT; i++) points.push({ h: hash32(`${e.address}-${i}`), e })
  points.sort((a, b) => a.h - b.h)
  return { hashes: Uint32Array.from(points, (p) => p.h), endpoints: points.map((p) => p.e) }
}

/** The endpoint owning `key`'s point: the first ring point at or after its hash. */
export function ringLookup(ring: Ring, key: string): Endpoint | undefined {
  const n = ring.hashes.length
  if (n === 0) return undefined
  const h = hash32(key)
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (ring.hashes[mid]! < h) lo = mid + 1
    else hi = mid
  }
  return ring.endpoints[lo === n ? 0 : lo]
}

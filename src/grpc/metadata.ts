// gRPC metadata as the header records the layers read (route matches, hashing, the caller chain,
// the inbound context). Binary (-bin) entries are left out: nothing in the mesh matches on them.
import type { Metadata } from '@grpc/grpc-js'

export function headersOf(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {}
  const map = md.getMap()
  for (const k in map) {
    const v = map[k]
    if (typeof v === 'string') out[k] = v
  }
  return out
}

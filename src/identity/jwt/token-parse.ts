// Reads a compact JWS's header and claims before verification, only to pick the rule (by iss) and
// the key (by kid) and to refuse what must never reach a verifier; nothing read here is trusted.

/** Largest token accepted, in characters; longer ones are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 8192

const SEGMENT = /^[A-Za-z0-9_-]*$/

export interface UnverifiedToken {
  readonly header: Record<string, unknown>
  readonly payload: Record<string, unknown>
}

/** The decoded header and payload, or why the text is not a compact JWT. */
export function parseCompact(token: string): UnverifiedToken | string {
  const first = token.indexOf('.')
  const second = first < 0 ? -1 : token.indexOf('.', first + 1)
  if (second < 0 || token.indexOf('.', second + 1) >= 0) return 'not a JWT (want three base64url parts separated by ".")'
  const parts = [token.slice(0, first), token.slice(first + 1, second), token.slice(second + 1)]
  if (!parts.every((p) => SEGMENT.test(p))) return 'not a JWT (a part is not base64url)'
  const header = decodeObject(parts[0]!)
  if (header === undefined) return 'not a JWT (the header is not a JSON object)'
  const payload = decodeObject(parts[1]!)
  if (payload === undefined) return 'not a JWT (the claims are not a JSON object)'
  return { header, payload }
}

function decodeObject(segment: string): Record<string, unknown> | undefined {
  if (segment.length === 0) return undefined
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

// Headers a proxy must not pass on (RFC 9110 §7.6.1): the connection-specific ones, and any the
// Connection header names. What is left goes to the next hop as the sender wrote it. `Expect:
// 100-continue` is answered by the sidecar's own server (node sends the 100 before the body is read)
// and not passed on, as Envoy does; undici refuses to send it anyway (curl sends it with any body
// over 1 KB).
import type { IncomingHttpHeaders } from 'node:http'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect'])

/** The end-to-end headers of a message (lowercase names; repeated ones as arrays), less `drop`. */
export function endToEndHeaders(headers: IncomingHttpHeaders, drop: readonly string[] = []): Record<string, string | string[]> {
  const named = typeof headers.connection === 'string' ? headers.connection.toLowerCase().split(',').map((s) => s.trim()) : []
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.includes(k) || drop.includes(k)) continue
    out[k] = v
  }
  return out
}

/** A response head for a raw socket, from undici's raw headers (name, value, name, value…), less `drop`. */
export function rawResponseHead(status: number, statusText: string, rawHeaders: readonly Buffer[], drop: readonly string[] = []): string {
  let head = `HTTP/1.1 ${status} ${statusText}\r\n`
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toString('latin1')
    if (drop.includes(name.toLowerCase())) continue
    head += `${name}: ${rawHeaders[i + 1]!.toString('latin1')}\r\n`
  }
  return head
}

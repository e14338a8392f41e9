// host:port parsing and formatting, IPv6 literals in brackets, used by config, options and discovery.
import { isIP } from 'node:net'

/** "host:port" and "[v6]:port"; with `ipOnly`, the host must be an IP literal. */
export function splitHostPort(address: string, ipOnly = false): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/]+)):(\d{1,5})$/.exec(address)
  if (!m) return undefined
  const host = m[1] ?? m[2]!
  const port = Number(m[3])
  if (port < 1 || port > 65535) return undefined
  if (ipOnly && !isIP(host)) return undefined
  return { host, port }
}

/** A loopback host: localhost, 127.0.0.0/8, ::1 (and 127.x as an IPv4-mapped IPv6 address). */
export function isLoopback(host: string | undefined): boolean {
  return host !== undefined && (host === 'localhost' || host === '::1' || /^(?:::ffff:)?127\./.test(host))
}

/** "host:port", with an IPv6 literal in brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

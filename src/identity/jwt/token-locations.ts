// Where tokens are read from (headers with a prefix, cookies, query parameters), compiled once per
// config so a request pays only for the locations some rule names.
import type { IncomingHttpHeaders } from 'node:http'
import type { JwtRuleSettings } from '../../config/types.js'

interface Location {
  readonly kind: 'header' | 'cookie' | 'param'
  readonly name: string
  /** Lowercased; matched case-insensitively ("bearer x" is a bearer token too, RFC 9110 §11.1). */
  readonly prefix: string
  /** Indexes of the rules that read this location. */
  readonly rules: readonly number[]
  readonly label: string
}

/** A token found in a request, and which rules looked where it was. */
export interface FoundToken {
  readonly token: string
  readonly rules: number[]
  /** Where it was, for messages: 'header "authorization"', 'cookie "session"'. */
  readonly where: string[]
}

export class TokenLocations {
  private readonly locations: Location[]
  private readonly anyCookie: boolean
  private readonly anyParam: boolean

  constructor(rules: readonly Pick<JwtRuleSettings, 'fromHeaders' | 'fromCookies' | 'fromParams'>[]) {
    const byKey = new Map<string, { kind: Location['kind']; name: string; prefix: string; rules: number[] }>()
    const add = (kind: Location['kind'], name: string, prefix: string, rule: number) => {
      const key = `${kind}\u0000${name}\u0000${prefix}`
      const loc = byKey.get(key)
      if (!loc) byKey.set(key, { kind, name, prefix, rules: [rule] })
      else if (!loc.rules.includes(rule)) loc.rules.push(rule)
    }
    rules.forEach((r, i) => {
      for (const h of r.fromHeaders) add('header', h.name.toLowerCase(), h.prefix.toLowerCase(), i)
      for (const c of r.fromCookies) add('cookie', c, '', i)
      for (const p of r.fromParams) add('param', p, '', i)
    })
    this.locations = [...byKey.values()].map((l) => ({ ...l, label: `${l.kind === 'param' ? 'query parameter' : l.kind} "${l.name}"` }))
    this.anyCookie = this.locations.some((l) => l.kind === 'cookie')
    this.anyParam = this.locations.some((l) => l.kind === 'param')
  }

  /**
   * Every distinct token at the configured locations. An empty list: no token (authentication
   * configured is not authentication required; authorization decides). A header present without
   * the prefix carries no token ("Basic …" is not a bearer token).
   */
  find(headers: IncomingHttpHeaders, query: string): FoundToken[] {
    const found: FoundToken[] = []
    const cookies = this.anyCookie ? parseCookies(headers.cookie) : undefined
    const params = this.anyParam && query.length > 1 ? new URLSearchParams(query) : undefined
    for (const loc of this.locations) {
      if (loc.kind === 'header') {
        const v = headers[loc.name]
        if (v === undefined) continue
        for (const one of typeof v === 'string' ? [v] : v) {
          const token = afterPrefix(one, loc.prefix)
          if (token) note(found, token, loc)
        }
      } else if (loc.kind === 'cookie') {
        for (const token of cookies?.get(loc.name) ?? []) if (token) note(found, token, loc)
      } else if (params) {
        for (const token of params.getAll(loc.name)) if (token) note(found, token.trim(), loc)
      }
    }
    return found
  }
}

function note(found: FoundToken[], token: string, loc: Location): void {
  const same = found.find((f) => f.token === token)
  if (!same) return void found.push({ token, rules: [...loc.rules], where: [loc.label] })
  for (const r of loc.rules) if (!same.rules.includes(r)) same.rules.push(r)
  if (!same.where.includes(loc.label)) same.where.push(loc.label)
}

function afterPrefix(value: string, prefix: string): string | undefined {
  if (prefix === '') return value.trim()
  if (value.length <= prefix.length || value.slice(0, prefix.length).toLowerCase() !== prefix) return undefined
  return value.slice(prefix.length).trim()
}

/** Cookie name → every value sent under it (RFC 6265 §5.4; a duplicate name is kept, not merged). */
function parseCookies(header: string | undefined): Map<string, string[]> | undefined {
  if (!header) return undefined
  const out = new Map<string, string[]>()
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    const name = part.slice(0, eq).trim()
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    const list = out.get(name)
    if (list) list.push(value)
    else out.set(name, [value])
  }
  return out
}

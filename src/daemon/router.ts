// A tiny router: method + path pattern ("/v1/instances/:id/watch") → handler. Unknown path → 404,
// known path with another method → 405 with an allow header. Path parameters are one segment each,
// percent-decoded (a malformed escape is a 400).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { badRequest, HttpError, notFound } from './http-error.js'

export interface Ctx {
  req: IncomingMessage
  res: ServerResponse
  params: Record<string, string>
  query: URLSearchParams
  /** Set once the admin credential was checked: a write that then succeeds is audited (server.ts). */
  admin?: boolean
}

export type Handler = (ctx: Ctx) => Promise<void>

interface Route {
  method: string
  parts: string[]
  handler: Handler
}

export class Router {
  private readonly routes: Route[] = []

  add(method: 'GET' | 'POST' | 'PUT' | 'DELETE', pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/'), handler })
    return this
  }

  /** The handler and its parameters; throws 404/405/400. */
  resolve(method: string, pathname: string): { handler: Handler; params: Record<string, string> } {
    const parts = pathname.split('/')
    const allowed: string[] = []
    for (const r of this.routes) {
      const params = matchParts(r.parts, parts)
      if (!params) continue
      if (r.method === method) return { handler: r.handler, params: decode(params) }
      allowed.push(r.method)
    }
    if (allowed.length === 0) throw notFound(`no such path: ${pathname.length > 200 ? pathname.slice(0, 200) + '…' : pathname}`)
    throw new HttpError(405, 'WEFT_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname} (allowed: ${allowed.join(', ')})`, undefined, { allow: allowed.join(', ') })
  }
}

function matchParts(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!
    const s = parts[i]!
    if (p.startsWith(':')) {
      if (s === '') return undefined
      params[p.slice(1)] = s
    } else if (p !== s) return undefined
  }
  return params
}

function decode(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(params)) {
    try {
      out[k] = decodeURIComponent(v)
    } catch {
      throw badRequest(`path parameter ${k} is not valid percent-encoding`)
    }
  }
  return out
}

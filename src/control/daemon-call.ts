// One plain call from an instance to its daemon (register, address, ACK, heartbeat, SVIDs,
// deregister): JSON in and out, bounded by a timeout, and a refusal turned into a Refused that
// keeps the daemon's status and code (the client registers again on 401/404). Which route
// (plaintext or mTLS) and which credential to send are the caller's: see client.ts.
import { request } from 'undici'
import type { Route } from './control-transport.js'
import { CONTROL_PROTOCOL, PROTOCOL_HEADER } from './protocol.js'

const LEVEL = String(CONTROL_PROTOCOL)

export class Refused extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

export interface DaemonCall {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path: string
  /** Sent as `authorization: Bearer <bearer>`; undefined sends none (over mTLS, the certificate). */
  bearer: string | undefined
  body?: unknown
  signal: AbortSignal | undefined
  timeoutMs: number
}

/** Makes the call; resolves with the parsed JSON answer (undefined for an empty body). */
export async function callDaemon(via: Route, c: DaemonCall): Promise<unknown> {
  const res = await request(`${via.base}${c.path}`, {
    dispatcher: via.dispatcher,
    method: c.method,
    signal: c.signal,
    headers: { [PROTOCOL_HEADER]: LEVEL, ...(c.bearer === undefined ? {} : { authorization: `Bearer ${c.bearer}` }), ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: c.body !== undefined ? JSON.stringify(c.body) : undefined,
    headersTimeout: c.timeoutMs,
    bodyTimeout: c.timeoutMs,
  })
  if (res.statusCode >= 300) throw await refusal(res)
  const text = await res.body.text()
  return text ? JSON.parse(text) : undefined
}

/** The daemon's error answer as a Refused (its `{ error: { code, message } }`, or the raw text). */
export async function refusal(res: { statusCode: number; body: { text(): Promise<string> } }): Promise<Refused> {
  const text = await res.body.text().catch(() => '')
  try {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error
    return new Refused(res.statusCode, e?.code ?? 'UNKNOWN', `HTTP ${res.statusCode} ${e?.code ?? ''}: ${e?.message ?? text}`)
  } catch {
    return new Refused(res.statusCode, 'UNKNOWN', `HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
  }
}

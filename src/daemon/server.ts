// The node:http server in front of the router: timeouts, and the one place errors become answers
// ({ error: { code, message, details? } }; anything not an HttpError is a logged 500).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from '../util/logger.js'
import { sendJson } from './api.js'
import { HttpError } from './http-error.js'
import type { Ctx, Router } from './router.js'
import { printable } from '../util/printable.js'
import { ACTOR_HEADER } from '../control/protocol.js'

/**
 * Who made an admin change, for its log line (RELIABILITY: an admin push names who pushed): the
 * admin credential and the caller's address, and the person the client names in weft-actor
 * (`weft` sends user@host), marked as the client's claim — the token is the only proof.
 */
function whoCalled(req: IncomingMessage): string {
  const v = req.headers[ACTOR_HEADER]
  const actor = printable(String(Array.isArray(v) ? v[0] : v ?? '')).slice(0, 128)
  return `by the admin token from ${req.socket.remoteAddress ?? '?'}${actor ? ` (${actor}, as the client says)` : ''}`
}

// Request timeouts bound how long a client may take to SEND a request (slow-loris); they do not
// cut a response in progress, so watch streams are not affected (checked on Node 20). The socket
// idle timeout stays off (0) for the same reason; watch sockets turn theirs off explicitly too.
const HEADERS_TIMEOUT_MS = 10_000
const REQUEST_TIMEOUT_MS = 30_000
// Instances answer every ping (a third of the lease) with a call. Behind a 5 s keep-alive (which
// undici keeps 3 s) each of those calls opened a new connection, over mTLS a full handshake, and
// every push made all instances reconnect at once (a storm that overflowed the accept queue at
// 10,000 instances, bench/control-push.ts). Kept idle connections cost a descriptor each.
const KEEP_ALIVE_TIMEOUT_MS = 65_000

export interface ServerTimeouts {
  headersTimeout: number
  requestTimeout: number
  keepAliveTimeout: number
  /** How often node:http checks the two above (its default, 30 s, would hide them in a test). */
  connectionsCheckingInterval?: number
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }

/**
 * With a separate admin listener (DaemonOptions.adminListen): which credentials each listener takes.
 * The instance-facing one refuses the admin token; the admin one takes no other token (calls with
 * none still reach the public reads, /healthz and /v1/jwks). The URLs are for the refusal's message.
 */
export interface ListenerRule {
  kind: 'instances' | 'admin'
  isAdmin(authorization: string | undefined): boolean
  urls: { instances: string; admin: string }
}

/** `timeouts` is for tests that shrink them to show a watch stream outlives them. */
export function createDaemonServer(router: Router, logger: Logger, timeouts: ServerTimeouts = DEFAULT_TIMEOUTS, rule?: ListenerRule): Server {
  const audit = new RefusalLog()
  const server = createServer({ ...timeouts }, (req, res) => {
    void handle(router, logger, audit, req, res, rule)
  })
  server.timeout = 0
  return server
}

/**
 * Refused calls (401/403) are logged — who tried what is worth seeing — but at most AUDIT_BURST
 * lines per AUDIT_WINDOW_MS, then one line with how many were left out, so a flood of bad tokens
 * cannot flood the log.
 */
const AUDIT_BURST = 20
const AUDIT_WINDOW_MS = 10_000

class RefusalLog {
  private windowStart = 0
  private logged = 0
  private dropped = 0

  refused(logger: Logger, line: string): void {
    const now = Date.now()
    if (now - this.windowStart > AUDIT_WINDOW_MS) {
      if (this.dropped > 0) logger.warn(`control daemon: ${this.dropped} more refused calls not logged in the last ${AUDIT_WINDOW_MS / 1000} s`)
      this.windowStart = now
      this.logged = 0
      this.dropped = 0
    }
    if (this.logged++ < AUDIT_BURST) logger.warn(`control daemon: refused ${line}`)
    else this.dropped++
  }
}

/** Refuses a credential this listener does not take (403, before routing: the same for every path). */
function checkListener(rule: ListenerRule, req: IncomingMessage): void {
  const header = req.headers.authorization
  const admin = rule.isAdmin(header)
  if (rule.kind === 'instances' && admin) {
    throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `this daemon takes admin calls on its admin listener only (${rule.urls.admin || 'see --admin-listen'}); this port serves instances`)
  }
  if (rule.kind === 'admin' && !admin && header !== undefined) {
    throw new HttpError(403, 'WEFT_ERR_FORBIDDEN', `the admin listener takes only the admin token; instances call ${rule.urls.instances || 'the daemon\'s main port'}`)
  }
}

async function handle(router: Router, logger: Logger, audit: RefusalLog, req: IncomingMessage, res: ServerResponse, rule: ListenerRule | undefined): Promise<void> {
  let path = '?'
  try {
    const url = new URL(req.url ?? '/', 'http://daemon')
    path = url.pathname
    if (rule) checkListener(rule, req)
    const { handler, params } = router.resolve(req.method ?? 'GET', url.pathname)
    const ctx: Ctx = { req, res, params, query: url.searchParams }
    await handler(ctx)
    if (ctx.admin && req.method !== 'GET' && res.statusCode < 400) logger.info(`control daemon: admin ${req.method} ${path}${url.search} answered ${res.statusCode}, ${whoCalled(req)}`)
  } catch (err) {
    if (res.headersSent) {
      // Mid-stream: no way to send an error body any more.
      res.destroy()
      return
    }
    if (err instanceof HttpError) {
      if (err.status === 401 || err.status === 403) audit.refused(logger, `${req.method} ${path} from ${req.socket.remoteAddress ?? '?'}: ${err.code}: ${err.message}`)
      sendJson(res, err.status, err.body(), err.headers)
      return
    }
    logger.error(`control daemon: ${req.method} ${path} failed: ${(err as Error)?.stack ?? String(err)}`)
    sendJson(res, 500, { error: { code: 'WEFT_ERR_INTERNAL', message: `internal error: ${(err as Error)?.message ?? String(err)}` } })
  }
}

// GET /dashboard (and its script and style): the daemon's web page, for a person at the admin
// token — instances and their sync state, NACK errors in full, policy history, revocations, and the
// live traffic of `weft top`. The files hold no data and need no credential; the data calls they
// make are the admin API's own (GET /v1/status, /v1/top, /v1/history) with the token typed in. Sent with a
// Content-Security-Policy that allows only this origin's script, style and fetches, and no framing.
import type { ServerResponse } from 'node:http'
import { DASHBOARD_CSS, DASHBOARD_HTML } from './page.js'
import { DASHBOARD_JS } from './script.js'

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const FILES: Record<string, { type: string; body: Buffer }> = {
  '/dashboard': { type: 'text/html; charset=utf-8', body: Buffer.from(DASHBOARD_HTML) },
  '/dashboard/app.js': { type: 'text/javascript; charset=utf-8', body: Buffer.from(DASHBOARD_JS) },
  '/dashboard/style.css': { type: 'text/css; charset=utf-8', body: Buffer.from(DASHBOARD_CSS) },
}

/** The browser asks for /favicon.ico on its own: an empty answer, not a 404 in its console. */
const NO_ICON = { type: 'image/x-icon', body: Buffer.alloc(0) }

export const DASHBOARD_PATHS = [...Object.keys(FILES), '/favicon.ico']

export function sendDashboardFile(res: ServerResponse, path: string): void {
  const f = FILES[path] ?? NO_ICON
  res.writeHead(200, {
    'content-type': f.type,
    'content-length': f.body.length,
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cache-control': 'no-cache',
  })
  res.end(f.body)
}

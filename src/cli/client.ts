// Calls from the `weft` commands to the control daemon's HTTP+JSON API (docs/design/control-plan.md):
// where the daemon is and which admin token to send (flags, data dir, env), and one
// request function that turns every failure into a message a user can act on.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { hostname, userInfo } from 'node:os'
import { Agent, request } from 'undici'
import { ACTOR_HEADER } from '../control/protocol.js'
import type { ConfigIssue } from '../config/types.js'
import { formatIssue } from '../config/validate.js'
import { CliError, type ParsedArgs } from './args.js'

export const DEFAULT_DATA_DIR = './.weft-daemon'
export const DEFAULT_CONTROL = 'http://127.0.0.1:7070'

export interface Connection {
  /** The daemon's base URL, without a trailing slash. */
  url: string
  token: string | undefined
  /** Where the token came from, for the hint on a 401. */
  tokenFrom: string | undefined
}

/**
 * Where the daemon is and which admin token to send, each looked up in this order:
 * --control / --token; then the files of an explicit --data-dir (daemon.json's url, admin.token);
 * then WEFT_CONTROL / WEFT_TOKEN; then the files of ./.weft-daemon; then http://127.0.0.1:7070
 * (and no token). An explicit --data-dir beats the environment: it names one daemon on purpose.
 */
export function resolveConnection(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): Connection {
  type Source = () => { url?: string; token?: string; tokenFrom: string }
  const fromDir = (dir: string): Source => () => {
    const tokenFile = join(dir, 'admin.token')
    return { url: readDaemonUrl(dir), token: readOptional(tokenFile)?.trim() || undefined, tokenFrom: tokenFile }
  }
  const explicitDir = args.strings['data-dir']
  const sources: Source[] = [
    () => ({ url: args.strings.control, token: args.strings.token, tokenFrom: '--token' }),
    ...(explicitDir !== undefined ? [fromDir(explicitDir)] : []),
    () => ({ url: nonEmpty(env.WEFT_CONTROL), token: nonEmpty(env.WEFT_TOKEN), tokenFrom: 'WEFT_TOKEN' }),
    ...(explicitDir === undefined ? [fromDir(DEFAULT_DATA_DIR)] : []),
  ]
  // Files are read only when the sources before them left something unset.
  let url: string | undefined
  let token: { token: string; from: string } | undefined
  for (const source of sources) {
    if (url !== undefined && token !== undefined) break
    const s = source()
    url ??= s.url
    if (token === undefined && s.token !== undefined) token = { token: s.token, from: s.tokenFrom }
  }
  return { url: normalizeUrl(url ?? DEFAULT_CONTROL), token: token?.token, tokenFrom: token?.from }
}

/** The daemon's URL for admin calls: its admin listener when it has one, else its only one. */
function readDaemonUrl(dir: string): string | undefined {
  const file = join(dir, 'daemon.json')
  const text = readOptional(file)
  if (text === undefined) return undefined
  try {
    const parsed = JSON.parse(text) as { url?: unknown; adminUrl?: unknown }
    if (typeof parsed.adminUrl === 'string') return parsed.adminUrl
    return typeof parsed.url === 'string' ? parsed.url : undefined
  } catch {
    throw new CliError(`weft: ${file} is not valid JSON`)
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new CliError(`weft: cannot read ${file}: ${(err as Error).message}`)
  }
}

function normalizeUrl(u: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(u) ? u : `http://${u}`
  try {
    new URL(withScheme)
  } catch {
    throw new CliError(`weft: "${u}" is not a daemon URL (use http://host:port)`)
  }
  return withScheme.replace(/\/+$/, '')
}

/** The daemon refused a call: its error body, kept whole for commands that format it. */
export class DaemonError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly details: unknown,
  ) {
    super(detail)
  }

  /** The validation issues of a 422 WEFT_ERR_POLICY_INVALID, if any. */
  get issues(): ConfigIssue[] {
    const list = (this.details as { issues?: unknown } | undefined)?.issues
    return Array.isArray(list) ? (list as ConfigIssue[]) : []
  }
}

export interface CallOptions {
  /** A JS value is sent as JSON; a string is sent as is with `contentType`. */
  body?: unknown
  contentType?: string
}

/** "user@host" for the daemon's log of admin changes (weft-actor); the token is the credential, this only names who used it. */
function actor(): string {
  let user = process.env.USER ?? ''
  try {
    user = userInfo().username
  } catch {
    // No passwd entry for this uid (some containers): the environment's USER, if any.
  }
  return `${user || 'unknown'}@${hostname()}`.replace(/[^\x21-\x7e]/g, '?')
}

export class DaemonClient {
  // Our own agent, closed after the command, so no idle keep-alive socket holds the process open.
  private readonly agent = new Agent({ connect: { timeout: 5_000 }, headersTimeout: 30_000, bodyTimeout: 30_000 })

  constructor(readonly conn: Connection) {}

  async call<T>(method: 'GET' | 'POST' | 'DELETE' | 'PUT', path: string, opts: CallOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', [ACTOR_HEADER]: actor() }
    if (this.conn.token !== undefined) headers.authorization = `Bearer ${this.conn.token}`
    let body: string | undefined
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)
      headers['content-type'] = opts.contentType ?? 'application/json'
    }
    let res
    try {
      res = await request(this.conn.url + path, { method, headers, body, dispatcher: this.agent })
    } catch (err) {
      throw new CliError(`weft: cannot reach the control daemon at ${this.conn.url} (${describeNetError(err)}); is \`weft daemon\` running? (set --control, WEFT_CONTROL or --data-dir)`)
    }
    const text = await res.body.text()
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    if (res.statusCode >= 400) {
      const e = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error
      const code = typeof e?.code === 'string' ? e.code : `HTTP ${res.statusCode}`
      const message = typeof e?.message === 'string' ? e.message : text.slice(0, 200) || `HTTP ${res.statusCode}`
      throw new DaemonError(res.statusCode, code, message, e?.details)
    }
    if (json === undefined && text !== '') throw new CliError(`weft: the daemon at ${this.conn.url} answered ${method} ${path} with something that is not JSON`)
    return json as T
  }

  close(): Promise<void> {
    return this.agent.close()
  }
}

function describeNetError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  const code = e.code ?? e.cause?.code
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timeout'
  if (code === 'ENOTFOUND') return 'unknown host'
  return code ?? e.message ?? String(err)
}

/**
 * The lines to print for a daemon refusal: 401/403 carry the daemon's message (and where the token
 * came from), 422 the issues formatted like `weft check` (with `file` when the body was a file).
 */
export function describeDaemonError(err: DaemonError, conn: Connection | undefined, file?: string): string[] {
  if (err.status === 401 || err.status === 403) {
    const hint = err.status === 401
      ? conn?.tokenFrom === undefined
        ? ' (no admin token: pass --token, set WEFT_TOKEN, or --data-dir of the daemon)'
        : ` (token from ${conn.tokenFrom})`
      : ''
    return [`weft: ${err.code}: ${err.detail}${hint}`]
  }
  if (err.status === 422 && err.issues.length > 0) {
    const lines = err.issues.map((i) => formatIssue(file !== undefined && i.line !== undefined ? { ...i, file } : i))
    const n = err.issues.filter((i) => i.severity === 'error').length
    lines.push(`weft: the daemon refused it: ${n} error${n === 1 ? '' : 's'} (${err.code}); nothing was changed`)
    return lines
  }
  return [`weft: ${err.code}: ${err.detail}`]
}

/** Opens a client for the command's connection flags, runs `fn`, then closes it. */
export async function withClient<T>(args: ParsedArgs, fn: (client: DaemonClient) => Promise<T>): Promise<T> {
  const client = new DaemonClient(resolveConnection(args))
  try {
    return await fn(client)
  } catch (err) {
    if (err instanceof DaemonError) throw new CliError(describeDaemonError(err, client.conn).join('\n'))
    throw err
  } finally {
    await client.close()
  }
}

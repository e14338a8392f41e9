// A control daemon for tests: on 127.0.0.1:0 in a temp data dir, tokens read back from the files
// it writes, plus small HTTP helpers (JSON calls, a watch stream read message by message).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import type { WatchMessage } from '../../src/control/protocol.js'
import { startDaemon, type Daemon, type DaemonOptions } from '../../src/daemon/index.js'
import { silentLogger } from '../../src/util/logger.js'

export interface TestDaemon {
  daemon: Daemon
  url: string
  adminToken: string
  joinToken: string
  dataDir: string
  /** Lines the daemon printed (first-start secrets). */
  printed: string[]
}

/** Data dirs this process made: removed when it exits (tests restart daemons on the same one). */
const made: string[] = []
process.once('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

/** Starts a daemon; pass `dataDir` to restart on the same one. */
export async function startTestDaemon(opts: Partial<DaemonOptions> = {}): Promise<TestDaemon> {
  let dataDir = opts.dataDir
  if (dataDir === undefined) made.push((dataDir = mkdtempSync(join(tmpdir(), 'weft-daemon-'))))
  const printed: string[] = []
  const daemon = await startDaemon({ listen: '127.0.0.1:0', logger: silentLogger, print: (l) => printed.push(l), ...opts, dataDir })
  return {
    daemon,
    url: daemon.url,
    adminToken: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(),
    joinToken: readFileSync(join(dataDir, 'join.token'), 'utf8').trim(),
    dataDir,
    printed,
  }
}

export interface Answer<T = any> {
  status: number
  body: T
  headers: Record<string, string | string[] | undefined>
}

/** One call; a JS body is sent as JSON, a string as is (with `contentType`). */
export async function call<T = any>(url: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH', path: string, token?: string, body?: unknown, contentType = 'application/json'): Promise<Answer<T>> {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = contentType
  const res = await request(url + path, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
  const text = await res.body.text()
  let parsed: unknown = text
  try {
    parsed = text === '' ? undefined : JSON.parse(text)
  } catch {
    // not JSON: the text itself
  }
  return { status: res.statusCode, body: parsed as T, headers: res.headers }
}

export async function register(t: TestDaemon, body: Record<string, unknown>, token = t.joinToken): Promise<{ id: string; token: string; leaseTtlMs: number }> {
  const r = await call(t.url, 'POST', '/v1/register', token, body)
  if (r.status !== 201) throw new Error(`register answered ${r.status}: ${JSON.stringify(r.body)}`)
  return r.body
}

export async function applyPolicy(t: TestDaemon, yaml: string, query = ''): Promise<Answer> {
  return call(t.url, 'POST', `/v1/policy${query}`, t.adminToken, yaml, 'application/yaml')
}

/** An open watch stream, read one message at a time. */
export class WatchStream {
  private readonly queue: WatchMessage[] = []
  private readonly waiters: (() => void)[] = []
  private partial = ''
  ended = false
  /** Every message received, pings included. */
  readonly all: WatchMessage[] = []

  constructor(readonly status: number, private readonly ac: AbortController, body: AsyncIterable<Buffer> & { on(e: string, f: (...a: any[]) => void): unknown }, onPing?: () => void) {
    body.on('data', (chunk: Buffer) => {
      const parts = (this.partial + chunk.toString('utf8')).split('\n')
      this.partial = parts.pop()!
      for (const p of parts) {
        if (p === '') continue
        const msg = JSON.parse(p) as WatchMessage
        if (msg.type === 'ping') onPing?.()
        this.all.push(msg)
        this.queue.push(msg)
      }
      this.wake()
    })
    const end = () => {
      this.ended = true
      this.wake()
    }
    body.on('end', end)
    body.on('error', end)
    body.on('close', end)
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  /** The next message (pings skipped unless asked); rejects after `timeoutMs` or when the stream ends. */
  async next(timeoutMs = 5000, withPings = false): Promise<WatchMessage> {
    const msg = await this.maybeNext(timeoutMs, withPings)
    if (!msg) throw new Error(this.ended ? 'watch stream ended' : `no watch message within ${timeoutMs} ms`)
    return msg
  }

  /** The next non-ping message within `ms`, or undefined. */
  async maybeNext(ms: number, withPings = false): Promise<WatchMessage | undefined> {
    const deadline = Date.now() + ms
    for (;;) {
      while (this.queue.length > 0) {
        const m = this.queue.shift()!
        if (withPings || m.type !== 'ping') return m
      }
      const left = deadline - Date.now()
      if (this.ended || left <= 0) return undefined
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  /** Resolves when the daemon ends the stream (rejects after `timeoutMs`). */
  async waitEnd(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('watch stream did not end')
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  close(): void {
    this.ac.abort()
  }
}

/**
 * Opens a watch; like a real instance it answers each ping with a heartbeat, unless `heartbeat` is
 * false (a frozen instance: the daemon drops its stream after one lease).
 */
export async function openWatch(url: string, id: string, token: string, version?: number, opts: { heartbeat?: boolean } = {}): Promise<WatchStream> {
  const ac = new AbortController()
  const res = await request(`${url}/v1/instances/${encodeURIComponent(id)}/watch${version !== undefined ? `?version=${version}` : ''}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: ac.signal,
    headersTimeout: 10_000,
    bodyTimeout: 0,
  })
  const body = res.body as unknown as AsyncIterable<Buffer> & { on(e: string, f: (...a: any[]) => void): unknown }
  body.on('error', () => {})
  const beat = () => void call(url, 'POST', `/v1/instances/${encodeURIComponent(id)}/heartbeat`, token, {}).catch(() => {})
  return new WatchStream(res.statusCode, ac, body, opts.heartbeat === false ? undefined : beat)
}

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export const SERVICE_YAML = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec:
  protocol: http
`

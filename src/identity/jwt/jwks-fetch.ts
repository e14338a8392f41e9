// One JWKS download: GET the configured URI with undici (never through the mesh), no redirects,
// a whole-request timeout and a body size cap; resolves the parsed JSON or throws saying why.
import { request, type Dispatcher } from 'undici'

export interface JwksFetchOptions {
  dispatcher: Dispatcher
  timeoutMs: number
  maxBytes: number
  /** Aborts the download (the registry closing). */
  signal?: AbortSignal
}

/** GETs `uri` and parses it as JSON. Only `uri` is ever requested: a 3xx is a failure, not followed. */
export async function fetchJwks(uri: string, o: JwksFetchOptions): Promise<unknown> {
  const timeout = AbortSignal.timeout(o.timeoutMs)
  const signal = o.signal ? AbortSignal.any([timeout, o.signal]) : timeout
  try {
    const res = await request(uri, {
      method: 'GET',
      dispatcher: o.dispatcher,
      signal,
      headers: { accept: 'application/jwk-set+json, application/json' },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    })
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined)
      throw new Error(`HTTP ${res.statusCode}${res.statusCode >= 300 && res.statusCode < 400 ? ' (redirects are not followed: configure the final URL)' : ''}`)
    }
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > o.maxBytes) {
      res.body.destroy()
      throw new Error(`the key set is ${declared} bytes, over the ${o.maxBytes}-byte limit`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > o.maxBytes) {
        res.body.destroy()
        throw new Error(`the key set is over the ${o.maxBytes}-byte limit`)
      }
      chunks.push(chunk as Buffer)
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      throw new Error('the response is not JSON')
    }
  } catch (err) {
    if (timeout.aborted) throw new Error(`no answer within ${o.timeoutMs}ms`)
    if (o.signal?.aborted) throw new Error('the key set cache was closed')
    throw err
  }
}

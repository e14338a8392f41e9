// Request bodies: read whole, up to a limit. A declared content-length over the limit is refused
// before a byte is read; a chunked body is counted as it arrives and refused when it crosses it.
// Either way the rest of the upload is discarded for a moment (so the client reads the 413 instead
// of a reset) and then the connection is cut, so a huge upload cannot tie the socket up.
import type { IncomingMessage } from 'node:http'
import { badRequest, HttpError } from './http-error.js'

export const MAX_BODY_BYTES = 1024 * 1024

/** After a 413 the client may keep sending; give it this long to read the answer, then cut. */
const DISCARD_MS = 2000

function tooLarge(req: IncomingMessage, limit: number): HttpError {
  req.resume()
  const t = setTimeout(() => req.socket.destroy(), DISCARD_MS)
  t.unref()
  req.socket.once('close', () => clearTimeout(t))
  return new HttpError(413, 'WEFT_ERR_PAYLOAD_TOO_LARGE', `request body over the ${limit / 1024 / 1024} MiB limit`, undefined, { connection: 'close' })
}

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(req, limit)
  // Events, not for-await: leaving an async iterator early destroys the request and with it the
  // socket the 413 must go out on.
  const buf = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) return void chunks.push(chunk)
      cleanup()
      reject(tooLarge(req, limit))
    }
    const onEnd = () => {
      cleanup()
      resolve(Buffer.concat(chunks))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const onClose = () => onError(new Error('the client went away before the body ended'))
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
  // fatal: a body that is not UTF-8 is refused rather than read with replacement characters.
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf)
  } catch {
    throw badRequest('request body is not valid UTF-8')
  }
}

/** A JSON object body; 400 naming the problem otherwise. An empty body is {} when `emptyOk`. */
export async function readJsonObject(req: IncomingMessage, emptyOk = false): Promise<Record<string, unknown>> {
  const text = await readBody(req)
  if (text.trim() === '') {
    if (emptyOk) return {}
    throw badRequest('request body is empty (want a JSON object)')
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest(`request body must be a JSON object (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value})`)
  }
  return value as Record<string, unknown>
}

// Request bodies that can be sent again on a retry. In-memory bodies (string, bytes, FormData,
// Blob) are always replayable. Streams are teed into a replay buffer while they are read; once
// more than the limit (64 KiB) has gone by, the body cannot be replayed and is never retried.
import type { CallBody } from '../stack/call.js'

const IN_MEMORY = (b: unknown): boolean =>
  typeof b === 'string' || b instanceof Uint8Array || b instanceof ArrayBuffer ||
  (typeof FormData !== 'undefined' && b instanceof FormData) || (typeof Blob !== 'undefined' && b instanceof Blob) ||
  b instanceof URLSearchParams

export function makeCallBody(body: unknown, replayLimit: number): CallBody | null {
  if (body === null || body === undefined) return null
  if (IN_MEMORY(body)) return { replayable: true, inMemory: true, forAttempt: () => body }
  const iterable = body as AsyncIterable<unknown> | Iterable<unknown>
  if (typeof (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (iterable as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return new StreamBody(iterable, replayLimit)
  }
  return { replayable: false, forAttempt: () => body }
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  return Buffer.from(String(chunk))
}

class StreamBody implements CallBody {
  private readonly source: AsyncIterator<unknown> | Iterator<unknown>
  private chunks: Buffer[] = []
  private size = 0
  private overflow = false
  private done = false

  constructor(iterable: AsyncIterable<unknown> | Iterable<unknown>, private readonly limit: number) {
    this.source = typeof (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
      ? (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (iterable as Iterable<unknown>)[Symbol.iterator]()
  }

  get replayable(): boolean {
    return !this.overflow
  }

  /** A fresh iterable per attempt: the buffered prefix first, then the rest of the source. */
  forAttempt(): AsyncIterable<Buffer> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this
    return {
      async *[Symbol.asyncIterator]() {
        let i = 0
        for (;;) {
          if (!self.overflow && i < self.chunks.length) {
            yield self.chunks[i++]!
            continue
          }
          if (self.done) return
          const r = await self.source.next()
          if (r.done) {
            self.done = true
            return
          }
          const buf = toBuffer(r.value)
          if (!self.overflow) {
            self.size += buf.length
            if (self.size > self.limit) {
              self.overflow = true
              self.chunks = []
            } else {
              self.chunks.push(buf)
              i++
            }
          }
          yield buf
        }
      },
    }
  }
}

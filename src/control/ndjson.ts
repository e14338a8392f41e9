// Splits a byte stream into lines of newline-delimited JSON. A line may arrive in pieces (and a
// UTF-8 character may be cut between chunks: the decoder keeps its bytes); a line longer than the
// cap is a protocol error (a daemon never sends one that big).
import { StringDecoder } from 'node:string_decoder'

const MAX_LINE = 64 * 1024 * 1024

export class NdjsonLines {
  private partial = ''
  private readonly decoder = new StringDecoder('utf8')

  /** The complete, non-empty lines this chunk finishes. */
  push(chunk: Buffer): string[] {
    const parts = (this.partial + this.decoder.write(chunk)).split('\n')
    this.partial = parts.pop()!
    if (this.partial.length > MAX_LINE) throw new Error(`watch stream line longer than ${MAX_LINE} bytes`)
    return parts.filter((l) => l.length > 0)
  }
}

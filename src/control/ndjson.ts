// Splits a byte stream into lines of newline-delimited JSON. A line may arrive in pieces: the
// pieces are kept as bytes and only each new chunk is searched for "\n", so a long line costs
// linear time (never re-scanning what came before). The newline byte never occurs inside a UTF-8
// sequence, so each line is decoded whole. A line longer than MAX_LINE_BYTES is a protocol error:
// a daemon never sends one that big, and a peer that does must not make the instance buffer it.
import type { WatchMessage } from './protocol.js'

/** The longest line taken, in bytes (a snapshot of thousands of endpoints is well under 1 MiB). */
export const MAX_LINE_BYTES = 8 * 1024 * 1024

const NEWLINE = 0x0a

export class NdjsonLines {
  private pieces: Buffer[] = []
  private pending = 0

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** The complete, non-empty lines this chunk finishes. */
  push(chunk: Buffer): string[] {
    const lines: string[] = []
    let start = 0
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      this.take(chunk.subarray(start, nl))
      const line = this.pieces.length === 1 ? this.pieces[0]!.toString('utf8') : Buffer.concat(this.pieces, this.pending).toString('utf8')
      this.pieces = []
      this.pending = 0
      if (line.length > 0) lines.push(line)
      start = nl + 1
    }
    if (start < chunk.length) this.take(chunk.subarray(start))
    return lines
  }

  private take(part: Buffer): void {
    this.pending += part.length
    if (this.pending > this.maxLineBytes) {
      this.pieces = []
      this.pending = 0
      throw new Error(`watch stream line longer than ${this.maxLineBytes} bytes`)
    }
    // An empty piece adds nothing; a kept subarray keeps the whole chunk alive, which is the
    // same memory the line needs anyway.
    if (part.length > 0) this.pieces.push(part)
  }
}

/**
 * One line of the watch stream as a message: an object with a string `type` (what the fields of
 * each type hold is checked where the message is used: views.ts). Anything else is a protocol
 * error, which closes the stream (there is no version to NACK); the error quotes the line's start.
 */
export function parseWatchMessage(line: string): WatchMessage {
  let msg: unknown
  try {
    msg = JSON.parse(line)
  } catch (err) {
    throw new Error(`watch stream: a line that is not JSON (${(err as Error).message}): ${preview(line)}`)
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg) || typeof (msg as { type?: unknown }).type !== 'string') {
    throw new Error(`watch stream: a message that is not an object with a type: ${preview(line)}`)
  }
  return msg as WatchMessage
}

/** The start of a line for a log message, control characters escaped. */
function preview(line: string): string {
  const head = JSON.stringify(line.slice(0, 80))
  return line.length > 80 ? `${head}… (${line.length} characters)` : head
}

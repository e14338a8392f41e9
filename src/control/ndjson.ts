// Splits a byte stream into lines of newline-delimited JSON. A line may arrive in pieces: the
// pieces are kept as bytes and only each new chunk is searched for "\n", so a long line costs
// linear time (never re-scanning what came before). The newline byte never occurs inside a UTF-8
// sequence, so each line is decoded whole. A line longer than MAX_LINE_BYTES is a protocol error:
// a daemon never sends one that big, and a peer that does must not make the instance buffer it.

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

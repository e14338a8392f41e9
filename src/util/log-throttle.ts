// One log line per window for a kind of event that can come in floods (refused connections): the
// first in a window is written, the rest only counted and named in the next line written.

/**
 * @example const log = throttledLog((line) => logger.warn(line), 10_000); log('refused a connection from …')
 */
export function throttledLog(write: (line: string) => void, windowMs: number): (line: string) => void {
  let last = 0
  let skipped = 0
  return (line) => {
    const now = Date.now()
    if (now - last < windowMs) {
      skipped++
      return
    }
    const more = skipped > 0 ? ` (and ${skipped} more since the last line)` : ''
    skipped = 0
    last = now
    write(line + more)
  }
}

// Quoting of untrusted token values (kid, iss, aud) for reasons and logs: escaped and truncated.

const UNPRINTABLE = /[^\x20-\x7e]/g

/**
 * `value` as a quoted, printable-ASCII string of at most `max` characters before quoting: control
 * characters, CR/LF, U+2028 and anything non-ASCII are written as \uXXXX escapes, so a hostile
 * value cannot forge a log line or a header (RELIABILITY J7, S3).
 * @example shown('a\r\nb') // '"a\\u000d\\u000ab"'
 */
export function shown(value: unknown, max = 64): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)
  const cut = text.length > max ? `${text.slice(0, max)}...(${text.length} chars)` : text
  return `"${cut.replace(/["\\]/g, (ch) => `\\${ch}`).replace(UNPRINTABLE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`
}

/** Makes a whole message printable ASCII (jose messages can echo header names). */
export function printable(text: string, max = 400): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text
  return cut.replace(UNPRINTABLE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

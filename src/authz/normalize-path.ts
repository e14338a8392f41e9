// Request-path normalisation for authorization: policies match the path an app could resolve, so
// encoded, doubled or dotted spellings of /admin cannot slip past a rule (RELIABILITY §3.3, B4).

const SLASH = 0x2f
const BACKSLASH = 0x5c
const PERCENT = 0x25
const DOT = 0x2e
const QUESTION = 0x3f
const HASH = 0x23
const HEX_DIGITS = '0123456789ABCDEF'

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const lower = c | 0x20
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(b: number): boolean {
  const lower = b | 0x20
  return (lower >= 0x61 && lower <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === DOT || b === 0x5f || b === 0x7e
}

/**
 * The path a policy is matched against, or undefined when the path is refused (the engine then
 * denies, reason `path-invalid`). What it does, in order:
 *
 * - drops the query (`?…`) and fragment (`#…`); an absolute-form target (`http://host/p`) is
 *   reduced to its path, as routers that parse it as a URL would;
 * - decodes percent-escapes of unreserved characters (`%61` → `a`, `%2e` → `.`) and of `/` and `\`
 *   (`%2F`, `%5C`, any case → `/`), and reads a literal `\` as `/`; other escapes stay encoded, with
 *   their hex in uppercase (`%2a` → `%2A`); decoding happens once (`%252F` stays `%252F`);
 * - merges runs of `/`, then removes `.` and `..` segments (RFC 3986 §5.2.4; `..` stops at the root);
 *   a trailing `/` is kept.
 *
 * Refused: a target that is not origin- or absolute-form (`*`, `host:port`), a `%` not followed by
 * two hex digits, `%00` or any literal control character, and a `..` that follows an empty segment
 * (`/a//../b`): Node's `path.normalize` reads that as `/b` and the WHATWG URL parser as `/a/b`, and
 * an app may use either, so no single answer is safe. Clients never send dot segments themselves
 * (fetch, undici and curl resolve them), so refusing costs no real traffic.
 *
 * Matching stays case-sensitive (`/ADMIN` is another path) unless a policy sets `ignorePathCase`;
 * Istio is case-sensitive too and leaves case-folding to a filter in front of it.
 *
 * Fast path: a path with no `%`, `\`, `//` or dot segment is returned as it is (no allocation), or
 * as the part before `?`/`#`.
 *
 * @example normalizePath('/public/%2e%2e/admin?x=1') // → '/admin'
 */
export function normalizePath(raw: string): string | undefined {
  if (raw.charCodeAt(0) !== SLASH) return absoluteFormPath(raw)
  let end = raw.length
  let clean = true
  for (let i = 0; i < end; i++) {
    const c = raw.charCodeAt(i)
    if (c === QUESTION || c === HASH) {
      end = i
      break
    }
    if (c < 0x20 || c === 0x7f) return undefined
    if (c === PERCENT || c === BACKSLASH) clean = false
    else if (c === SLASH && i + 1 < raw.length && raw.charCodeAt(i + 1) === SLASH) clean = false
    else if (c === DOT && raw.charCodeAt(i - 1) === SLASH && isDotSegmentEnd(raw, i)) clean = false
  }
  if (clean) return end === raw.length ? raw : raw.slice(0, end)
  return slowPath(raw, end)
}

/** Whether the "." at i (after a "/") begins a "." or ".." segment. */
function isDotSegmentEnd(raw: string, i: number): boolean {
  let j = i + 1
  if (raw.charCodeAt(j) === DOT) j++
  const next = raw.charCodeAt(j)
  return j >= raw.length || next === SLASH || next === QUESTION || next === HASH
}

/** `http(s)://authority/path…` → the path; anything else that does not start with "/" → refused. */
function absoluteFormPath(raw: string): string | undefined {
  const m = /^https?:\/\//i.exec(raw)
  if (!m) return undefined
  let i = m[0].length
  while (i < raw.length) {
    const c = raw.charCodeAt(i)
    if (c === SLASH) return normalizePath(raw.slice(i))
    if (c === QUESTION || c === HASH) break
    if (c === BACKSLASH || c === PERCENT || c < 0x21 || c === 0x7f) return undefined // ambiguous authority
    i++
  }
  return '/'
}

function slowPath(raw: string, end: number): string | undefined {
  let decoded = ''
  let chunk = 0
  for (let i = 0; i < end; i++) {
    const c = raw.charCodeAt(i)
    if (c === BACKSLASH) {
      decoded += raw.slice(chunk, i) + '/'
      chunk = i + 1
    } else if (c === PERCENT) {
      if (i + 2 >= end) return undefined
      const hi = hexValue(raw.charCodeAt(i + 1))
      const lo = hexValue(raw.charCodeAt(i + 2))
      if (hi < 0 || lo < 0) return undefined
      const byte = hi * 16 + lo
      if (byte === 0) return undefined
      decoded += raw.slice(chunk, i)
      if (byte === SLASH || byte === BACKSLASH) decoded += '/'
      else if (isUnreserved(byte)) decoded += String.fromCharCode(byte)
      else decoded += '%' + HEX_DIGITS[hi]! + HEX_DIGITS[lo]!
      i += 2
      chunk = i + 1
    }
  }
  decoded += raw.slice(chunk, end)
  return resolveSegments(decoded)
}

/** Merges slashes and removes dot segments of a path that starts with "/". */
function resolveSegments(path: string): string | undefined {
  const segments = path.split('/')
  const out: string[] = []
  const last = segments.length - 1
  let trailingSlash = false
  let sawEmpty = false
  for (let k = 1; k <= last; k++) {
    const s = segments[k]!
    if (s === '' || s === '.') {
      if (k === last) trailingSlash = true
      else if (s === '') sawEmpty = true
    } else if (s === '..') {
      if (sawEmpty) return undefined // "/a//../b": "/b" or "/a/b" depending on who resolves it
      out.pop()
      if (k === last) trailingSlash = true
    } else {
      out.push(s)
    }
  }
  return '/' + out.join('/') + (trailingSlash && out.length > 0 ? '/' : '')
}

// Header helpers for undici dispatch options: every accepted shape becomes one lowercase record.

export type HeaderRecord = Record<string, string | string[]>

function add(out: HeaderRecord, name: string, value: unknown): void {
  if (value === undefined || value === null) return
  const key = name.toLowerCase()
  const v = Array.isArray(value) ? value.map(String) : String(value)
  const prev = out[key]
  if (prev === undefined) out[key] = v
  else out[key] = ([] as string[]).concat(prev, v)
}

/** Copies undici's header shapes (record, flat array, iterable of pairs, Headers) into a record. */
export function toHeaderRecord(headers: unknown): HeaderRecord {
  const out: HeaderRecord = {}
  if (headers === null || headers === undefined) return out
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown[][]) add(out, String(pair[0]), pair[1])
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) add(out, String(headers[i]), headers[i + 1])
    }
    return out
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, unknown]>) add(out, k, v)
    return out
  }
  for (const key of Object.keys(headers as object)) add(out, key, (headers as Record<string, unknown>)[key])
  return out
}

/** First value of a header in a lowercase record. */
export function headerValue(headers: HeaderRecord, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Reads a header from undici's raw response headers (Buffer pairs) without parsing all of them. */
export function rawHeaderValue(raw: readonly (Buffer | Buffer[] | string)[], name: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!
    if (k.length === name.length && k.toString().toLowerCase() === name) {
      const v = raw[i + 1]!
      return Array.isArray(v) ? String(v[0]) : v.toString()
    }
  }
  return undefined
}

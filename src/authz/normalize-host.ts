// The Host header as policies match it: lowercase, without port or trailing dot (RFC 4343; an
// uppercase or dotted Host once bypassed Istio's policies, GHSA-7774-7vr3-cc8j).

/**
 * `PAYMENTS.default.:8080` → `payments.default`; `[::1]:80` → `[::1]`. Returns the input itself
 * when it is already in that form (the common case: no allocation).
 */
export function normalizeHost(host: string): string {
  let end = host.length
  let changed = false
  // A port follows the last ":" after any IPv6 bracket.
  const bracket = host.lastIndexOf(']')
  const colon = host.indexOf(':', bracket + 1)
  if (colon >= 0) {
    end = colon
    changed = true
  }
  while (end > 0 && host.charCodeAt(end - 1) === 0x2e) {
    end--
    changed = true
  }
  for (let i = 0; i < end && !changed; i++) {
    const c = host.charCodeAt(i)
    if (c >= 0x41 && c <= 0x5a) changed = true
  }
  return changed ? host.slice(0, end).toLowerCase() : host
}

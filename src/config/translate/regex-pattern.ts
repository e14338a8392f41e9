// SMI writes paths and header values as regular expressions; Weft's authorization never matches
// with one (a plain comparison after normalisation cannot be slipped past with an encoding, see
// config/validate-authz.ts). The regular expressions that are really a literal, a prefix or a
// suffix are turned into those patterns; anything else is refused by the caller, with the reason.

/** Characters a literal may hold unescaped, and the escaped ones that stand for themselves. */
const PLAIN = /^[A-Za-z0-9/_~%:@!,;=' -]$/
const ESCAPABLE = /^[.\-/_~:@]$/

/**
 * A regular expression as a Weft pattern ("exact", "prefix*", "*suffix" or "*"), or undefined.
 * `startOnly`: the expression is anchored at the start only (SMI's pathRegex), so an expression
 * without a closing `$` is a prefix.
 */
export function regexAsPattern(regex: string, startOnly: boolean): string | undefined {
  let re = regex.startsWith('^') ? regex.slice(1) : regex
  let endAnchor = false
  if (re.endsWith('$') && !re.endsWith('\\$')) {
    endAnchor = true
    re = re.slice(0, -1)
  }
  let anyStart = false
  let anyEnd = false
  if (re.startsWith('.*')) {
    anyStart = true
    re = re.slice(2)
  }
  if (re.endsWith('.*') && !re.endsWith('\\.*')) {
    anyEnd = true
    re = re.slice(0, -2)
  }
  const literal = unescape(re)
  if (literal === undefined) return undefined
  if (literal === '') return anyStart || anyEnd || (startOnly && !endAnchor) ? '*' : undefined
  const prefix = anyEnd || (startOnly && !endAnchor)
  if (anyStart && prefix) return undefined // "*middle*" is not a pattern
  if (anyStart) return `*${literal}`
  return prefix ? `${literal}*` : literal
}

function unescape(re: string): string | undefined {
  let out = ''
  for (let i = 0; i < re.length; i++) {
    const ch = re[i]!
    if (ch === '\\') {
      const next = re[i + 1]
      if (next === undefined || !ESCAPABLE.test(next)) return undefined
      out += next
      i++
    } else if (PLAIN.test(ch)) out += ch
    else return undefined
  }
  return out
}

// Compiled AuthorizationPolicy string patterns ("exact", "prefix*", "*suffix", "*"): plain string
// comparisons, never regular expressions (CVE-2026-39350), optionally ignoring ASCII case.
import { patternParts } from '../config/validate-authz.js'

/** ASCII-only case folding: the same answer for every locale, and no allocation. */
function fold(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c
}

/** Whether s[at…] starts with lit (lit already lowercase when folding). */
function startsAt(s: string, at: number, lit: string, ignoreCase: boolean): boolean {
  if (!ignoreCase) return s.startsWith(lit, at)
  for (let i = 0; i < lit.length; i++) if (fold(s.charCodeAt(at + i)) !== lit.charCodeAt(i)) return false
  return true
}

/** A list of patterns compiled once; `test` answers "does any of them match?". */
export class PatternSet {
  private readonly any: boolean
  private readonly exact: readonly string[]
  /** Exact values for the whole-string, case-sensitive test (the common one), when there are many. */
  private readonly exactSet: ReadonlySet<string> | undefined
  private readonly prefixes: readonly string[]
  private readonly suffixes: readonly string[]

  /**
   * @param patterns valid patterns (checked by config/validate-authz.ts `patternError`)
   * @param ignoreCase compare ignoring ASCII case; default false
   */
  constructor(readonly patterns: readonly string[], private readonly ignoreCase = false) {
    const exact: string[] = []
    const prefixes: string[] = []
    const suffixes: string[] = []
    let any = false
    for (const p of patterns) {
      const { form, literal } = patternParts(p)
      const lit = ignoreCase ? literal.toLowerCase() : literal
      if (form === 'any') any = true
      else if (form === 'exact') exact.push(lit)
      else if (form === 'prefix') prefixes.push(lit)
      else suffixes.push(lit)
    }
    this.any = any
    this.exact = exact
    this.exactSet = !ignoreCase && exact.length > 4 ? new Set(exact) : undefined
    this.prefixes = prefixes
    this.suffixes = suffixes
  }

  /** Whether s (or its slice [start, end)) matches any pattern. */
  test(s: string, start = 0, end = s.length): boolean {
    if (this.any) return true
    const len = end - start
    const fold = this.ignoreCase
    if (!fold && start === 0 && end === s.length) {
      // The common case: a whole value, case-sensitive. `===` is far cheaper than startsWith.
      if (this.exactSet !== undefined) {
        if (this.exactSet.has(s)) return true
      } else {
        for (let i = 0; i < this.exact.length; i++) if (this.exact[i] === s) return true
      }
    } else {
      for (let i = 0; i < this.exact.length; i++) {
        const e = this.exact[i]!
        if (e.length === len && startsAt(s, start, e, fold)) return true
      }
    }
    // Checking the literal's far end first rejects most misses without a full comparison.
    for (let i = 0; i < this.prefixes.length; i++) {
      const p = this.prefixes[i]!
      if (p.length <= len && (p.length === 0 || sameChar(s, start + p.length - 1, p, p.length - 1, fold)) && startsAt(s, start, p, fold)) return true
    }
    for (let i = 0; i < this.suffixes.length; i++) {
      const x = this.suffixes[i]!
      if (x.length <= len && sameChar(s, end - x.length, x, 0, fold) && startsAt(s, end - x.length, x, fold)) return true
    }
    return false
  }
}

function sameChar(s: string, at: number, lit: string, i: number, ignoreCase: boolean): boolean {
  const c = s.charCodeAt(at)
  return (ignoreCase ? fold(c) : c) === lit.charCodeAt(i)
}

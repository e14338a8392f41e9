// The fuzzer's mutations of a text input: character flips, dictionary tokens inserted, ranges
// deleted, copied or repeated (repetition finds inputs whose cost grows faster than their length),
// numbers swapped for boundary values, and two corpus entries spliced. Seeded, so a run reproduces.

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let s = seed | 0
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ODD_CHARS = ['\u0000', '\u0001', '\t', '\n', '\r', ' ', '"', "'", '\\', '%', '/', '.', ':', '{', '}', '[', ']', ',', '-', '#', '?', '&', '*', '!', '|', '>', '\u007f', '\u00e9', '\u2028', '\ud800', '\ufeff', '😀']
const NUMBERS = ['0', '-1', '1', '255', '65536', '4294967296', '9007199254740993', '1e309', '-0', '0.5', 'NaN', '00']

export class Mutator {
  readonly random: () => number

  constructor(seed: number, private readonly dictionary: readonly string[], private readonly maxLength: number) {
    this.random = rng(seed)
  }

  private int(n: number): number {
    return Math.floor(this.random() * n)
  }

  private pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!
  }

  /** One to four mutations of `input`; `other` is another corpus entry to splice with. */
  mutate(input: string, other: string): string {
    let s = input
    const n = 1 + this.int(4)
    for (let i = 0; i < n; i++) s = this.once(s, other)
    return s.length > this.maxLength ? s.slice(0, this.maxLength) : s
  }

  private once(s: string, other: string): string {
    const at = this.int(s.length + 1)
    switch (this.int(8)) {
      case 0: // flip one character
        return s.slice(0, at) + this.pick(ODD_CHARS) + s.slice(at + 1)
      case 1: // insert a printable ASCII character
        return s.slice(0, at) + String.fromCharCode(0x20 + this.int(95)) + s.slice(at)
      case 2: // insert a dictionary token
        return this.dictionary.length ? s.slice(0, at) + this.pick(this.dictionary) + s.slice(at) : s
      case 3: { // delete a range
        const len = 1 + this.int(Math.min(16, Math.max(1, s.length - at)))
        return s.slice(0, at) + s.slice(at + len)
      }
      case 4: { // copy a range elsewhere
        const from = this.int(s.length + 1)
        const piece = s.slice(from, from + 1 + this.int(32))
        return s.slice(0, at) + piece + s.slice(at)
      }
      case 5: { // repeat a short range many times
        const piece = s.slice(at, at + 1 + this.int(8)) || this.pick(ODD_CHARS)
        const times = 2 ** (1 + this.int(12))
        return s.slice(0, at) + piece.repeat(Math.min(times, Math.floor(this.maxLength / piece.length))) + s.slice(at)
      }
      case 6: { // a number for a boundary value
        const m = /\d+/.exec(s.slice(at))
        if (!m) return s + this.pick(NUMBERS)
        const i = at + m.index
        return s.slice(0, i) + this.pick(NUMBERS) + s.slice(i + m[0].length)
      }
      default: // splice with another entry
        return s.slice(0, at) + other.slice(this.int(other.length + 1))
    }
  }
}

/** Tokens cut from the seeds (words, punctuation runs), added to a target's dictionary. */
export function tokensOf(seeds: readonly string[]): string[] {
  const out = new Set<string>()
  for (const s of seeds) for (const m of s.matchAll(/[A-Za-z_][A-Za-z0-9_-]{1,30}|[^\sA-Za-z0-9]{1,3}/g)) out.add(m[0])
  return [...out].slice(0, 500)
}

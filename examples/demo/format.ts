// Number formatting shared by the progress line and the summary.
export const int = (n: number): string => Math.round(n).toLocaleString('en-US')
export const pct = (part: number, whole: number, digits = 1): string => `${whole === 0 ? '0' : ((part * 100) / whole).toFixed(digits)}%`
export const ms = (n: number): string => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`
export const sum = (m: Iterable<number>): number => [...m].reduce((a, b) => a + b, 0)

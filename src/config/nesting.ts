// A bound on how deeply YAML/JSON text nests, checked before parsing: the yaml composer and toJS
// recurse once per level, so text nested a few hundred thousand levels deep (well under a 1 MiB
// body) overflows the stack, and in one process a second such input kills it outright (V8 runs out
// of memory after the overflow). No policy comes near the bound.
//
// The check runs the yaml package's own lexer (the tokens the parser will see, so quoting is judged
// the same way) and stops at the first token past the bound, so a hostile input costs a few tokens.
// Flow depth ([ and {) is exact; block depth is counted from indentation and from the "- ", "? " and
// ": " indicators that open a node on the same line, which can only count high, never low. Inside a
// flow collection, each ":" after the first in one entry (`{"k":"k":"k":…}`, invalid, but the parser
// nests a compact mapping per ":" before it says so) counts as a level too (found by fuzzing: 3,000
// of them, 12 KB, overflowed the stack).
import { yamlLib } from './yaml-lib.js'

/** Levels of nesting allowed (a Weft policy uses about ten). */
export const MAX_NESTING = 64

/** Zero-width markers the lexer puts into its token stream (not in the source text). */
let markers: Set<string> | undefined

/** Where the text first nests deeper than `limit` (an offset into it), or undefined. */
export function findDeepNesting(text: string, limit = MAX_NESTING): { offset: number; depth: number } | undefined {
  /** Columns of the block nodes enclosing the current position. */
  const stack: number[] = []
  let flow = 0
  let offset = 0
  let col = 0
  let lineStart = true
  let afterIndicator = false
  /** ":" indicators in the current flow entry (since its "," or bracket). */
  let chain = 0
  /** Block indicators ("- ", "? ") met inside flow collections since flow context began. */
  let blockInFlow = 0
  const open = (at: number): { offset: number; depth: number } | undefined => {
    while (stack.length > 0 && stack[stack.length - 1]! >= at) stack.pop()
    stack.push(at)
    return stack.length + flow > limit ? { offset, depth: stack.length + flow } : undefined
  }
  const { CST, Lexer } = yamlLib()
  const MARKERS = (markers ??= new Set([CST.DOCUMENT, CST.SCALAR]))
  for (const token of new Lexer().lex(text)) {
    if (token === CST.FLOW_END) {
      // The lexer gave up on an unclosed flow collection (a less indented line came): what follows
      // is read in block context again (found by fuzzing: "[{ a" left open hid 2,000 nested "- ").
      flow = 0
      chain = 0
      continue
    }
    if (MARKERS.has(token)) continue
    const type = CST.tokenType(token)
    const nl = token.lastIndexOf('\n')
    if (type === 'newline' || (type === 'space' && nl >= 0)) {
      lineStart = true
      afterIndicator = false
      col = nl >= 0 ? token.length - nl - 1 : 0
    } else if (type === 'space' || type === 'comment') {
      col += token.length
    } else {
      if (type === 'doc-start' || type === 'doc-end') {
        // A document marker ends whatever the last document left open, an unclosed "{" included:
        // the lexer reads what follows in block context (found by fuzzing: a "{" left open above
        // "---" hid 4,000 nested "- " from the count).
        stack.length = 0
        flow = 0
        chain = 0
      }
      else if (flow === 0 && (lineStart || afterIndicator)) {
        // A node starts here: at the start of a line, or after an indicator on the same line. A
        // flow collection is counted by `flow` instead.
        if (type === 'flow-seq-start' || type === 'flow-map-start') {
          while (stack.length > 0 && stack[stack.length - 1]! >= col) stack.pop()
        } else {
          const deep = open(col)
          if (deep) return deep
        }
      }
      // Valid flow content has no block indicator; the lexer emits them there only after an error,
      // and the parser still nests a block sequence per one (found by fuzzing: 3,300 "- " after a
      // broken quoted scalar inside "[{"): each counts as a level, however they are laid out.
      if (flow > 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind') && ++blockInFlow + stack.length + flow > limit) return { offset, depth: blockInFlow + stack.length + flow }
      lineStart = false
      afterIndicator = flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind')
      if (type === 'flow-seq-start' || type === 'flow-map-start') {
        if (flow === 0) blockInFlow = 0
        flow++
        chain = 0
        if (stack.length + flow > limit) return { offset, depth: stack.length + flow }
      } else if ((type === 'flow-seq-end' || type === 'flow-map-end') && flow > 0) {
        flow--
        chain = 0
      } else if (type === 'comma') chain = 0
      else if (type === 'map-value-ind' && flow > 0 && ++chain > 1 && stack.length + flow + chain - 1 > limit) return { offset, depth: stack.length + flow + chain - 1 }
      col = nl >= 0 ? token.length - nl - 1 : col + token.length
    }
    offset += token.length
  }
  return undefined
}

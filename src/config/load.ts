// Loads resources from a YAML/JSON file or text (multi-document, or an array) or from JS values,
// keeping a way back from a field path to its line:column.
import { readFileSync } from 'node:fs'
import type { Document, Node } from 'yaml'
import { yamlLib } from './yaml-lib.js'
import { findDeepNesting, MAX_NESTING } from './nesting.js'
import type { ConfigIssue, PathSeg } from './types.js'

export interface RawResource {
  value: unknown
  /** Index of the resource in its source, for ordering. */
  index: number
  file?: string
  /** line:column (1-based) of the field at path, or of its nearest existing parent. */
  locate(path: readonly PathSeg[]): { line: number; column: number } | undefined
  /**
   * A resource translated from SMI or Gateway API (config/translate): the label findings name it
   * by ("HTTPRoute/payments (as Route)") and the field path in what the user wrote for a path in
   * the Weft resource.
   */
  translated?: { label: string; sourcePath(path: readonly PathSeg[]): readonly PathSeg[] }
}

export interface LoadResult {
  resources: RawResource[]
  issues: ConfigIssue[]
}

const noLocation = (): undefined => undefined

/** Loads from a file path. A read failure is reported as an issue, not thrown. */
export function loadFile(file: string): LoadResult {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return { resources: [], issues: [{ severity: 'error', code: 'WEFT_E_FILE_UNREADABLE', resource: '-', path: '', message: `cannot read ${file}: ${(err as Error).message}`, file }] }
  }
  return loadText(text, file)
}

/** Loads YAML or JSON text; JSON is YAML, so one parser gives positions for both. */
export function loadText(text: string, file?: string): LoadResult {
  // Before the parser, which recurses per level: see nesting.ts.
  const deep = findDeepNesting(text)
  if (deep) {
    const { line, column } = lineColumn(text, deep.offset)
    const message = `nested more than ${MAX_NESTING} levels deep; refused before parsing (a policy nests about ten)`
    return { resources: [], issues: [{ severity: 'error', code: 'WEFT_E_SYNTAX', resource: '-', path: '', message, file, line, column }] }
  }
  const { LineCounter, parseAllDocuments, isScalar } = yamlLib()
  const lineCounter = new LineCounter()
  let docs
  try {
    docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  } catch (err) {
    // The pre-check above bounds what the parser recurses on; a broken input it misjudges (the
    // fuzzer found three, now counted) still gets a finding, not an exception out of the loader.
    if (!(err instanceof RangeError)) throw err
    return { resources: [], issues: [{ severity: 'error', code: 'WEFT_E_SYNTAX', resource: '-', path: '', message: 'nested too deeply to parse (the YAML parser ran out of stack); a policy nests about ten levels', file, line: 1, column: 1 }] }
  }
  const resources: RawResource[] = []
  const issues: ConfigIssue[] = []
  const docList = Array.isArray(docs) ? docs : [docs]
  for (const doc of docList as Document.Parsed[]) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineCounter.linePos(e.pos[0])
        issues.push({ severity: 'error', code: 'WEFT_E_SYNTAX', resource: '-', path: '', message: e.message.split('\n')[0]!, file, line: pos.line, column: pos.col })
      }
      continue
    }
    const root = doc.contents
    if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) continue // empty document
    const locate = (prefix: PathSeg[]) => (path: readonly PathSeg[]) => {
      const full = [...prefix, ...path]
      for (let n = full.length; n >= 0; n--) {
        const node = nodeAt(doc, full.slice(0, n))
        if (node?.range) {
          const pos = lineCounter.linePos(node.range[0])
          return { line: pos.line, column: pos.col }
        }
      }
      return undefined
    }
    let value: unknown
    try {
      // Aliases are resolved here; an unresolved one or an alias bomb throws (found by fuzzing).
      value = doc.toJS({ maxAliasCount: 100 })
    } catch (err) {
      const pos = root?.range ? lineCounter.linePos(root.range[0]) : undefined
      issues.push({ severity: 'error', code: 'WEFT_E_SYNTAX', resource: '-', path: '', message: (err as Error).message, file, line: pos?.line, column: pos?.col })
      continue
    }
    if (Array.isArray(value)) {
      value.forEach((item, i) => resources.push({ value: item, index: resources.length, file, locate: locate([i]) }))
    } else {
      resources.push({ value, index: resources.length, file, locate: locate([]) })
    }
  }
  return { resources, issues }
}

/** Wraps JS values (an object or an array of objects); no positions. */
export function loadValue(value: unknown): LoadResult {
  const list = Array.isArray(value) ? value : [value]
  return { resources: list.map((v, i) => ({ value: v, index: i, locate: noLocation })), issues: [] }
}

/** 1-based line and column of an offset into `text`. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let start = 0
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    start = i + 1
  }
  return { line, column: offset - start + 1 }
}

function nodeAt(doc: Document, path: PathSeg[]): Node | undefined {
  const { isMap, isNode, isPair, isScalar, isSeq } = yamlLib()
  let node: unknown = doc.contents
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
      node = pair?.value ?? (pair?.key as unknown)
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg]
    } else return undefined
    if (node === undefined || node === null) return undefined
  }
  return isNode(node) ? node : undefined
}

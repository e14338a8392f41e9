// What the translators share: a foreign resource as read (envelope checked), finding codes, and the
// two steps each translator starts with (its spec, the trace back to its source).
import type { Checker, Obj } from '../checker.js'
import type { RawResource } from '../load.js'
import { Trace } from './trace.js'

export interface ForeignResource {
  raw: RawResource
  /** Reports findings on what the user wrote, labelled "<Kind>/<name>". */
  c: Checker
  group: string
  version: string
  kind: string
  name: string
  namespace: string
  value: Obj
}

/** A Weft resource made from a foreign one; its findings point back at the source. */
export type Translated = RawResource

/** A field of an SMI / Gateway API resource that Weft cannot honour: refused, never dropped. */
export const UNSUPPORTED = 'WEFT_E_TRANSLATE_UNSUPPORTED'
/** A field that has no effect in a mesh (the Gateway API says so, or Weft has nothing to do). */
export const IGNORED = 'WEFT_W_TRANSLATE_IGNORED'

/** The resource's spec with only `allowed` fields, or undefined (reported) when it is missing. */
export function readSpec(f: ForeignResource, allowed: readonly string[]): Obj | undefined {
  const spec = f.c.object(f.value.spec, ['spec'], allowed)
  if (!spec && (f.value.spec === undefined || f.value.spec === null)) f.c.error(['spec'], 'is required', 'WEFT_E_FIELD_REQUIRED')
  return spec
}

/** The trace of a resource translated from `f` (its metadata is the source's metadata). */
export function traceOf(f: ForeignResource): Trace {
  return new Trace({ raw: f.raw, path: [] })
}

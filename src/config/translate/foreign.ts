// What the translators share: a foreign resource as read (envelope checked), and finding codes.
import type { Checker, Obj } from '../checker.js'
import type { RawResource } from '../load.js'

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

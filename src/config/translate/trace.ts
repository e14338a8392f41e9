// The way back from a translated Weft resource to what the user wrote: each Weft field path the
// translator fills is recorded with the source resource and field it came from, so a finding in
// the Weft resource points at the SMI / Gateway API YAML's line:column and field path.
import type { RawResource } from '../load.js'
import type { PathSeg } from '../types.js'

export interface Origin {
  raw: RawResource
  path: readonly PathSeg[]
}

export class Trace {
  private readonly origins = new Map<string, Origin>()

  constructor(private readonly root: Origin) {}

  /** Records that the Weft field at `path` comes from `from` (in the root's resource unless `raw`). */
  map(path: readonly PathSeg[], from: readonly PathSeg[], raw: RawResource = this.root.raw): void {
    this.origins.set(key(path), { raw, path: from })
  }

  /**
   * The origin of the longest recorded prefix of `path`; under metadata, the same field of the
   * source (the only part written field for field).
   */
  origin(path: readonly PathSeg[]): Origin {
    if (path[0] === 'metadata') return { raw: this.root.raw, path }
    for (let n = path.length; n > 0; n--) {
      const o = this.origins.get(key(path.slice(0, n)))
      if (o) return o
    }
    return this.root
  }

  /** The translated resource: `value` validated as Weft, located in the source. */
  resource(value: object, label: string): RawResource {
    const src = this.root.raw
    return {
      value,
      index: src.index,
      file: src.file,
      locate: (path) => {
        const o = this.origin(path)
        return o.raw.locate(o.path)
      },
      translated: { label, sourcePath: (path) => this.origin(path).path },
    }
  }
}

const key = (path: readonly PathSeg[]): string => path.join('\u0000')

// Stack: an immutable, outermost-first list of layers, editable by role and printable.
import { WeftError } from '../errors/index.js'
import type { Handler, Layer } from './layer.js'

export class Stack<Req, Res, Target> {
  readonly layers: readonly Layer<Req, Res, Target>[]

  constructor(layers: readonly Layer<Req, Res, Target>[]) {
    const seen = new Set<string>()
    for (const layer of layers) {
      if (seen.has(layer.role)) throw new WeftError('WEFT_ERR_INVALID_ARG', `stack: duplicate layer role "${layer.role}"`)
      seen.add(layer.role)
    }
    this.layers = Object.freeze([...layers])
  }

  /** Roles, outermost first. */
  roles(): string[] {
    return this.layers.map((l) => l.role)
  }

  has(role: string): boolean {
    return this.layers.some((l) => l.role === role)
  }

  insertBefore(role: string, layer: Layer<Req, Res, Target>): Stack<Req, Res, Target> {
    const i = this.indexOf(role)
    return new Stack([...this.layers.slice(0, i), layer, ...this.layers.slice(i)])
  }

  insertAfter(role: string, layer: Layer<Req, Res, Target>): Stack<Req, Res, Target> {
    const i = this.indexOf(role)
    return new Stack([...this.layers.slice(0, i + 1), layer, ...this.layers.slice(i + 1)])
  }

  replace(role: string, layer: Layer<Req, Res, Target>): Stack<Req, Res, Target> {
    const i = this.indexOf(role)
    return new Stack([...this.layers.slice(0, i), layer, ...this.layers.slice(i + 1)])
  }

  remove(role: string): Stack<Req, Res, Target> {
    const i = this.indexOf(role)
    return new Stack([...this.layers.slice(0, i), ...this.layers.slice(i + 1)])
  }

  /** Composes the chain for one target around the terminal handler; done once per target. */
  build(terminal: Handler<Req, Res>, target: Target): Handler<Req, Res> {
    let next = terminal
    for (let i = this.layers.length - 1; i >= 0; i--) next = this.layers[i]!.wrap(next, target)
    return next
  }

  /** The chain as text, outermost first, one layer a line with the reason for its position. */
  describe(): string {
    return this.layers.map((l, i) => `${String(i + 1).padStart(2)}. ${l.role}${l.why ? ` — ${l.why}` : ''}`).join('\n')
  }

  private indexOf(role: string): number {
    const i = this.layers.findIndex((l) => l.role === role)
    if (i < 0) throw new WeftError('WEFT_ERR_INVALID_ARG', `stack: no layer with role "${role}" (have: ${this.roles().join(', ')})`)
    return i
  }
}

// The Layer contract: one concern, wrapping the next handler for one target. Protocol-neutral.

/** Receives a handler's outcome, exactly once: an error, or a response. */
export type Done<Res> = (err: Error | null, res?: Res) => void

/**
 * A handler takes one request-shaped value and calls `done` once with the outcome. Callbacks, not
 * promises: on the per-request path each promise hop costs a microtask and allocations, and a
 * dozen layers made that the largest part of the mesh's overhead (bench/RESULTS.md). The same
 * shape as undici's dispatch handlers.
 */
export type Handler<Req, Res> = (req: Req, done: Done<Res>) => void

/** Runs a handler as a promise (for callers outside the hot path, and tests). */
export function runHandler<Req, Res>(handler: Handler<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => handler(req, (err, res) => (err ? reject(err) : resolve(res as Res))))
}

/**
 * A layer wraps the next handler for a target (a service + route rule). `wrap` runs once per
 * (target, config version), never per request; returning `next` itself makes a layer free when
 * it has nothing to do for that target.
 */
export interface Layer<Req, Res, Target> {
  /** Stable role name: used to edit a stack (before/after/replace/remove) and by describe(). */
  readonly role: string
  /** Why the layer sits where it does; printed by describe(). */
  readonly why?: string
  wrap(next: Handler<Req, Res>, target: Target): Handler<Req, Res>
}

// The Layer contract: one concern, wrapping the next handler for one target. Protocol-neutral.

/** A handler takes one request-shaped value and resolves with a response-shaped value. */
export type Handler<Req, Res> = (req: Req) => Promise<Res>

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

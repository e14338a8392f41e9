// The inbound calls in flight, for drain: a list threaded through the calls themselves. A Set did
// the same job but allocated now and then as it grew and shrank by one per request (~120 bytes a
// request in V8's sampling heap profile of a meshed node:http server at 32 in flight).
import type { InboundCall } from './call.js'

export class InFlightCalls {
  private head: InboundCall | undefined = undefined
  size = 0

  add(call: InboundCall): void {
    call.prevInFlight = undefined
    call.nextInFlight = this.head
    if (this.head !== undefined) this.head.prevInFlight = call
    this.head = call
    this.size++
  }

  /** Removes `call`, which add() put in (once). */
  delete(call: InboundCall): void {
    const { prevInFlight: prev, nextInFlight: next } = call
    if (prev !== undefined) prev.nextInFlight = next
    else if (this.head === call) this.head = next
    else return // not in the list (already removed)
    if (next !== undefined) next.prevInFlight = prev
    call.prevInFlight = call.nextInFlight = undefined
    this.size--
  }

  /** Calls `fn` on each call in flight (`fn` may remove the call it is given). */
  forEach(fn: (call: InboundCall) => void): void {
    let c = this.head
    while (c !== undefined) {
      const next = c.nextInFlight
      fn(c)
      c = next
    }
  }
}

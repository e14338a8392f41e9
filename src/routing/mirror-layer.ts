// The 'mirror' client layer: traffic mirroring (shadowing), as Envoy's request_mirror_policies and
// Istio's `mirror` do it. For `percent` of a rule's HTTP calls a copy goes to the mirror's service
// and subset, fire and forget: its answer is read and dropped, its failure never reaches the
// caller, and it is never retried. It sits below 'fault' (an injected abort means the request never
// left, so no copy goes; an injected delay is waited first, as in Envoy) and above retries (one
// copy per call, not per attempt).
// The copy carries the caller's headers with Host "<service>-shadow" (Envoy's convention: a mirror
// target can tell shadow traffic from real) and the same body when the body is held in memory; a
// streamed body would have to be buffered whole to be sent twice, so such calls are not mirrored
// (counted as skipped_body); nor are upgrade requests (WebSocket), whose copy would open a second
// session at the mirror (skipped_upgrade). It joins the caller's trace as a sibling of the call's own span.
// The copies run on a stack of their own (compile.ts, mirrorStackOf): no circuit breaker and no
// concurrency limit, so shadow failures never open the breaker that guards real traffic to the
// same service and copies never take its concurrency. Copies in flight per rule are capped
// instead, at the mirror service's concurrencyLimit; past it a copy is skipped (skipped_limit).
import type { ClientStack } from '../client-stack.js'
import { DEADLINE_HEADER } from '../http/transport.js'
import { OutboundCall, type ClientLayer, type ParentContext } from '../stack/call.js'
import type { MirrorTarget } from '../stack/target.js'
import { parseTraceparent } from '../telemetry/tracing.js'
import { CALLER_HEADER } from '../inbound/context.js'
import type { HeaderRecord } from '../util/headers.js'

/** Appended to the mirror service's name in the copy's Host header (Envoy's "-shadow"). */
export const MIRROR_HOST_SUFFIX = '-shadow'

const NO_OPTS: Readonly<Record<string, unknown>> = Object.freeze({})

/** Layers a copy does not go through: the real traffic's breaker and limit, and the rule's own fault and mirror. */
const NOT_FOR_COPIES = ['circuit', 'limit', 'fault', 'mirror']

/** The stack mirrored copies run on: the client stack without NOT_FOR_COPIES. */
export function mirrorStackOf(stack: ClientStack): ClientStack {
  return NOT_FOR_COPIES.reduce((s, role) => (s.has(role) ? s.remove(role) : s), stack)
}

export const mirrorLayer: ClientLayer = {
  role: 'mirror',
  why: 'below fault (an aborted call sends no copy) and above retries: one copy per call, never per attempt',
  wrap(next, target) {
    const m = target.mirror
    if (!m || target.protocol === 'grpc') return next
    const count = target.metrics.mirrorCounter(m.target.service.name)
    const limit = m.target.service.concurrencyLimit
    const host = `${m.target.service.name}${MIRROR_HOST_SUFFIX}`
    let inFlight = 0
    const settled = (): void => {
      inFlight--
    }
    return (call, done) => {
      if (m.percent >= 100 || Math.random() * 100 < m.percent) {
        if (call.opts.upgrade) count('skipped_upgrade')
        else if (call.body !== null && call.body.inMemory !== true) count('skipped_body')
        else if (inFlight >= limit) count('skipped_limit')
        else {
          inFlight++
          count('sent')
          sendCopy(call, m, host, settled)
        }
      }
      next(call, done)
    }
  },
}

/** Starts the copy of `call`; `settled` is called once its answer (or failure) came. */
function sendCopy(call: OutboundCall, m: MirrorTarget, host: string, settled: () => void): void {
  const headers: HeaderRecord = { ...call.headers, host }
  // The copy's trace layer writes its own traceparent (a new span id in the caller's trace), and
  // the copy's deadline header comes from its own deadline.
  delete headers.traceparent
  delete headers[DEADLINE_HEADER]
  const copy = new OutboundCall(call.method, call.path, headers, call.body, NO_OPTS, m.target)
  copy.parent = call.parent ?? parentOf(call)
  copy.deadline = call.deadline
  m.handler(copy, (err, res) => {
    settled()
    if (res) {
      copy.commit()
      res.discard()
      copy.finish(res, undefined)
    } else copy.finish(undefined, err ?? undefined)
  })
}

/** Outside a meshed handler: the copy continues the trace of the call it copies. */
function parentOf(call: OutboundCall): ParentContext | undefined {
  const tp = call.headers.traceparent
  const parsed = parseTraceparent(typeof tp === 'string' ? tp : undefined)
  if (parsed === undefined) return undefined
  const chain = call.headers[CALLER_HEADER]
  return { deadline: call.deadline, traceId: parsed.traceId, traceFlags: parsed.flags, chain: typeof chain === 'string' ? chain : call.target.source }
}

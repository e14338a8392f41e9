// The time a request spends in the client's own code, measured the same way for every arm: from the
// caller's call to the moment undici's core creates the request (about to write it), plus from the
// moment undici's core has the response headers to the caller's continuation after the body. What
// lies between (the socket, the server) both arms share and is left out, and so is most of what a
// busy VM adds to an end-to-end p99: only a stall that falls inside those two short windows counts.
// undici publishes both moments on its diagnostics channels; both arms create their request
// synchronously inside the call (checked per request: an arm that does not is refused).
import dc from 'node:diagnostics_channel'
import hdr from 'hdr-histogram-js'
import type { Send } from './load.js'

interface Pending {
  t0: number
  created: number
  headers: number
}

/** In-path time histogram in ns (1 ns to 10 s, 3 significant digits). */
export function newNsHistogram(): ReturnType<typeof hdr.build> {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: 3 })
}

export interface InPathFigures {
  /** The histogram of in-path ns, encoded (hdr-histogram-js compressed base64). */
  hist: string
  /** Requests that completed without both marks (should be 0). */
  unmarked: number
}

/** Wraps `send` to record each request's in-path time; `after()` returns the figures since the last call and resets them. */
export function inPathRecorder(send: Send): { send: Send; after(): InPathFigures } {
  let hist = newNsHistogram()
  let unmarked = 0
  let current: Pending | undefined
  const byRequest = new WeakMap<object, Pending>()
  const now = () => performance.now()
  dc.subscribe('undici:request:create', (m) => {
    const p = current
    if (p === undefined) return
    current = undefined
    p.created = now()
    byRequest.set((m as { request: object }).request, p)
  })
  dc.subscribe('undici:request:headers', (m) => {
    const p = byRequest.get((m as { request: object }).request)
    if (p !== undefined) p.headers = now()
  })
  const timed: Send = async () => {
    const p: Pending = { t0: now(), created: 0, headers: 0 }
    current = p
    const done = send()
    if (current === p) {
      current = undefined
      // A request refused before it reached undici (the mesh failing fast) fails as itself.
      await done
      throw new Error('in-path: the request did not reach undici synchronously inside the call; this arm cannot be measured this way')
    }
    const ok = await done
    const end = now()
    if (p.created > 0 && p.headers > 0) hist.recordValue(Math.max(1, Math.round((p.created - p.t0 + (end - p.headers)) * 1e6)))
    else unmarked++
    return ok
  }
  return {
    send: timed,
    after() {
      const figures = { hist: hdr.encodeIntoCompressedBase64(hist), unmarked }
      hist = newNsHistogram()
      unmarked = 0
      return figures
    },
  }
}

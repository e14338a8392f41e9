// Open plaintext connections follow the mTLS mode. The front doors (src/http/tls-front-door.ts,
// src/grpc/front-door.ts) sort a connection by the mode when it arrives; a keep-alive plaintext
// connection accepted under DISABLE or PERMISSIVE would otherwise stay served after the mode
// becomes STRICT. Each front door keeps its plaintext connections here: while it holds any, the
// mode is re-read every MODE_CHECK_MS (and whenever the door reads it for a new connection), and
// once it is STRICT every one of them is handed to the door to be ended. DISABLE ↔ PERMISSIVE ends
// nothing. The mesh tells its front doors when a new policy is in use (`pushed`: check() is called
// then, and nothing polls); a door without that signal re-reads the mode every MODE_CHECK_MS while
// it holds plaintext connections, and costs nothing while it holds none (a STRICT one).
import type { MtlsMode } from '../config/types.js'

/** How often a server that holds plaintext connections re-reads its mode, when no change is pushed. */
export const MODE_CHECK_MS = 250

/** A connection ended with a response or calls in flight gets this long to finish them. */
export const END_GRACE_MS = 10_000

interface Closable {
  once(event: 'close', listener: () => void): unknown
}

export class PlaintextWatch<C extends Closable> {
  private readonly open = new Set<C>()
  private timer: NodeJS.Timeout | undefined

  /**
   * `mode`: the server's mode now. `end`: called with the open plaintext connections once the mode
   * is STRICT; they are no longer watched (each is handed over once). `pushed`: the owner calls
   * check() whenever the mode may have changed, so no timer polls it.
   */
  constructor(private readonly mode: () => MtlsMode, private readonly end: (connections: C[]) => void, private readonly pushed = false) {}

  /** A plaintext connection is served: watched until it closes. */
  add(c: C): void {
    this.open.add(c)
    c.once('close', () => {
      this.open.delete(c)
      if (this.open.size === 0) this.stopTimer()
    })
    if (!this.timer && !this.pushed) {
      this.timer = setInterval(() => this.check(), MODE_CHECK_MS)
      this.timer.unref()
    }
  }

  /** Ends the open plaintext connections if the mode is STRICT (`mode`: the mode just read, if any). */
  check(mode?: MtlsMode): void {
    if (this.open.size === 0 || (mode ?? this.mode()) !== 'STRICT') return
    const all = [...this.open]
    this.open.clear()
    this.stopTimer()
    this.end(all)
  }

  /** The server closed: nothing is watched any more (its own close ends the connections). */
  stop(): void {
    this.stopTimer()
    this.open.clear()
  }

  get size(): number {
    return this.open.size
  }

  private stopTimer(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}

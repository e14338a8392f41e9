// What an instance tells the daemon on its watch stream: the ACK or NACK of each pushed view, and a
// heartbeat for each ping (the daemon drops an instance that stays silent for a lease). An ACK/NACK
// that does not get through stays pending and is sent again with the next ping in place of the
// heartbeat (it counts as one), so the daemon learns what runs even when a POST is lost. Beats go
// one at a time and off the stream's loop: a slow daemon must neither stall reading the stream
// nor collect a pile of requests, one per ping. Apart from client.ts, which holds the stream.
import type { Logger } from '../util/logger.js'

/** The daemon takes at most this many kept keys per ACK (src/daemon/requests.ts). */
const MAX_KEPT = 1000

export interface Ack {
  version: number
  /** Set for a NACK: why the version does not apply. */
  error?: string
}

export interface AckSenderDeps {
  /** POSTs `body` to this instance's `ack` or `heartbeat` resource, with its current credentials. */
  post(resource: 'ack' | 'heartbeat', body: unknown): Promise<unknown>
  /** Registered and not closed: a beat can be sent now. */
  canBeat(): boolean
  logger: Logger
  /** A beat failed (the stream stays; the next ping tries again). */
  onBeatFailed(err: Error): void
  /**
   * The resources this instance keeps although the daemon dropped them (RELIABILITY F5), read when
   * each ACK/NACK goes out, so a resend carries what is kept then (`weft status` shows them).
   * Sent while non-empty, and once empty after that.
   */
  kept?(): string[]
  /**
   * The traffic to report with a heartbeat (what changed since the daemon last took one), if any;
   * `commit` once the heartbeat got through (for `weft top`).
   */
  traffic?: TrafficSource
}

/** The mesh's traffic totals (telemetry/traffic-report.ts's TrafficReporter). */
export interface TrafficSource {
  take(): { report: unknown; commit(): void } | undefined
  /** A new watch stream (maybe another daemon): the next report carries every edge. */
  resendAll(): void
}

export class AckSender {
  /** An ACK/NACK not known to have reached the daemon: sent again with the next ping. */
  private pending: Ack | undefined
  /** A heartbeat (or a pending ACK) is in flight. */
  private beating = false
  /** The last ACK that got through said something is kept (the next one says when nothing is). */
  private keptReported = false
  /**
   * ACK posts go one at a time, in the order asked: the daemon keeps the last it receives, so an
   * older one landing after a newer one (the resume's, racing the first view's) left the instance
   * STALE at a version it had moved on from, until its next change.
   */
  private chain: Promise<void> = Promise.resolve()

  constructor(private readonly d: AckSenderDeps) {}

  /**
   * A new stream: says at once which version runs. A daemon that holds the same version sends
   * nothing to ACK, and may not know this instance's state (a new registration, another daemon).
   */
  resume(version: number): void {
    this.d.traffic?.resendAll()
    this.pending = { version }
    this.beat()
  }

  /** ACK or NACK; one that fails is sent again with the next ping. */
  async send(ack: Ack): Promise<void> {
    this.pending = ack
    await this.inOrder(ack).catch((err: Error) => {
      this.d.logger.warn(`control: could not send ${ack.error === undefined ? 'ACK' : 'NACK'} for version ${ack.version} (${err.message}); sending it again with the next heartbeat`)
    })
  }

  /** Answers a ping: a pending ACK/NACK if there is one (it counts as a heartbeat), else a heartbeat. One at a time, off the stream's loop. */
  beat(): void {
    if (this.beating || !this.d.canBeat()) return
    this.beating = true
    const ack = this.pending
    const traffic = ack ? undefined : this.d.traffic?.take()
    const sent = ack ? this.inOrder(ack) : this.d.post('heartbeat', traffic ? { traffic: traffic.report } : {})
    void sent.then(
      () => {
        this.beating = false
        traffic?.commit()
      },
      (err: Error) => {
        this.beating = false
        this.d.onBeatFailed(new Error(`heartbeat: ${err.message}`))
      },
    )
  }

  /** Posts `ack` after those asked before it; skipped if a newer one replaced it meanwhile. */
  private inOrder(ack: Ack): Promise<void> {
    const run = this.chain.then(() => (this.pending === ack ? this.post(ack) : undefined))
    this.chain = run.catch(() => {})
    return run
  }

  private async post(ack: Ack): Promise<void> {
    // `kept` only while something is kept, and once more (empty) to clear it: a daemon older than
    // the field refuses an ACK that carries it, so a healthy instance never sends it.
    const kept = this.d.kept?.().slice(0, MAX_KEPT) ?? []
    const say = this.d.kept !== undefined && (kept.length > 0 || this.keptReported)
    await this.d.post('ack', say ? { ...ack, kept } : ack)
    if (say) this.keptReported = kept.length > 0
    if (this.pending === ack) this.pending = undefined
  }
}

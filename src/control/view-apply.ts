// What an instance runs of what its daemon pushes, and the ACK or NACK that says so. Policy and
// endpoints are kept apart (as xDS keeps resource types): when a pushed view does not apply, its
// endpoints are tried on top of the last applied policy, so one refused policy does not freeze
// every endpoint list; the version is still NACKed (its policy is not what runs). A stream resumes
// from the last version applied, never from a refused one. The pure rules are views.ts; this holds
// the state they work on, apart from client.ts, which holds the connection (register, stream,
// reconnect) and sends the answers.
import type { Logger } from '../util/logger.js'
import type { Ack } from './ack-sender.js'
import type { WatchMessage } from './protocol.js'
import { endpointsOnGoodPolicy, isVersion, malformed, staleReason, viewOf, type ControlView } from './views.js'

export class ViewApplier {
  /** The daemon's view as last told on this stream (applied or NACKed): deltas build on it. */
  private latest: ControlView | undefined
  /** The last view applied whole (ACKed): a new stream resumes from its version. */
  private appliedView: ControlView | undefined
  /** The last view offered was refused as older than (or forged at) the running version. */
  private stale = false
  /** What runs: `applied`, or its policy with newer endpoints (then at the policy's version). */
  private running: ControlView | undefined
  /**
   * Deletions listed by views that were not applied (NACKed): a later delta lists only its own, so
   * the next view applied carries these too (deletion-guard.ts would otherwise keep them).
   */
  private carried: string[] = []

  /** `apply` resolves with undefined when the view applied, or the reason it did not (a NACK). */
  constructor(
    private readonly apply: (view: ControlView) => Promise<string | undefined>,
    private readonly logger: Logger,
  ) {}

  /** The last view applied whole (undefined before the first). */
  get applied(): ControlView | undefined {
    return this.appliedView
  }

  /** The last view offered was older than (or forged at) the running version: not progress. */
  get refusedStale(): boolean {
    return this.stale
  }

  /**
   * A new stream resumes from the last version applied, never a NACKed one (the daemon then sends
   * what is newer, and does not take the resume for an ACK); deltas build on that view from now on.
   */
  resume(): ControlView | undefined {
    this.latest = this.appliedView
    return this.appliedView
  }

  /**
   * Applies the view a watch message describes; resolves with the ACK or NACK to send, undefined
   * for a message that is no view, or false for a delta that does not fit (a new stream is needed).
   */
  async offer(msg: WatchMessage): Promise<Ack | false | undefined> {
    // A message of an unknown type or with fields missing (RELIABILITY B3) changes nothing: NACKed
    // when it has a version to NACK, else a protocol error that closes the stream (client.ts).
    const problem = malformed(msg)
    if (problem !== undefined) {
      const version = (msg as { version?: unknown }).version
      if (!isVersion(version)) throw new Error(`watch stream: ${problem}`)
      this.logger.error(`control: watch message of version ${version} rejected (NACK); still serving the policy of version ${this.appliedView?.version ?? 'none'}\n${problem}`)
      return { version, error: problem }
    }
    let view = viewOf(msg, this.latest)
    if (view === false || view === undefined) return view
    if (this.carried.length > 0) view = { ...view, deleted: [...new Set([...this.carried, ...(view.deleted ?? [])])] }
    // A refused view never becomes the base of a delta: deltas built on it do not fit, and the
    // stream is opened again (views.ts).
    const stale = staleReason(view, this.appliedView)
    this.stale = stale !== undefined
    if (stale === undefined) this.latest = view
    const error = stale ?? (await this.tryApply(view))
    if (error === undefined) {
      this.appliedView = view
      this.running = view
      this.carried = []
      return { version: view.version }
    }
    if (stale === undefined) this.carried = view.deleted ?? []
    const good = this.appliedView
    const mixed = stale ? undefined : endpointsOnGoodPolicy(view, good, this.running)
    const endpointsApplied = mixed !== undefined && (await this.tryApply(mixed)) === undefined
    if (endpointsApplied) this.running = mixed
    this.logger.error(`control: config version ${view.version} rejected (NACK); still serving the policy of version ${good?.version ?? 'none'}${endpointsApplied ? ', with the endpoints of this version' : ''}\n${error}`)
    return { version: view.version, error }
  }

  private async tryApply(view: ControlView): Promise<string | undefined> {
    try {
      return await this.apply(view)
    } catch (err) {
      return (err as Error).message
    }
  }
}

// An endpoint's grpc-js channels: one HTTP/2 connection each, more than one only while the calls
// in flight need it (RELIABILITY L6, no head-of-line blocking). A server caps the streams open at
// once on a connection (SETTINGS_MAX_CONCURRENT_STREAMS, commonly 100); a call beyond that waits
// in the client's HTTP/2 layer, behind long-lived streams that may never end. grpc-js keeps one
// connection per subchannel and does not expose the peer's SETTINGS, so the mesh counts the calls
// it has open on each channel itself and opens another channel when every one is at the cap
// (`streamsPerConnection`, 100 unless set lower for servers that allow fewer). Each call goes to
// the least-loaded channel, the oldest first on a tie; a channel beyond the first that carried no
// call for a whole idle period is closed (gracefully: calls on it finish).
import type { Channel } from '@grpc/grpc-js'
import { invalidArg } from '../errors/index.js'

export interface ConnectionLimits {
  /** Calls the mesh puts on one connection at once before it opens another. */
  streamsPerConnection: number
  /** Connections to one endpoint at most; beyond, calls share the least-loaded one. */
  maxPerEndpoint: number
  /** A connection beyond an endpoint's first is closed after carrying no call for this long. */
  idleMs: number
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = { streamsPerConnection: 100, maxPerEndpoint: 32, idleMs: 60_000 }

/** Checks and merges a partial update of the limits (mesh.grpc.setConnectionLimits). */
export function mergeConnectionLimits(into: ConnectionLimits, update: Partial<ConnectionLimits>): void {
  if (typeof update !== 'object' || update === null) invalidArg('grpc.setConnectionLimits(limits)', 'must be an object')
  const int = (name: keyof ConnectionLimits, min: number): number | undefined => {
    const v = update[name]
    if (v === undefined) return undefined
    if (!Number.isInteger(v) || v < min) invalidArg(`grpc.setConnectionLimits(${name})`, `must be an integer >= ${min} (got ${JSON.stringify(v)})`)
    return v
  }
  const streams = int('streamsPerConnection', 1)
  const max = int('maxPerEndpoint', 1)
  const idle = int('idleMs', 1)
  if (streams !== undefined) into.streamsPerConnection = streams
  if (max !== undefined) into.maxPerEndpoint = max
  if (idle !== undefined) into.idleMs = idle
}

/** Something that can close one connection (identity.ts closes one at its certificate's expiry). */
export interface ClosableConnection {
  readonly closed: boolean
  close(): void
}

/** What makes a channel: the credentials and options are the endpoint's own (identity.ts). */
export type ChannelMaker = (extra: boolean) => { channel: Channel; bind?: (conn: ClosableConnection) => void }

/** One channel of an endpoint and the mesh's calls on it. */
export class EndpointConnection implements ClosableConnection {
  /** Calls started on it whose final status has not come. */
  active = 0
  /** Calls started on it, ever; the idle sweep compares it between two sweeps. */
  started = 0
  /** `started` at the last sweep. */
  sweptAt = 0
  closed = false

  constructor(readonly channel: Channel, private readonly owner: EndpointChannels) {}

  /** Closes this connection alone (the endpoint's next call uses, or makes, another). */
  close(): void {
    this.owner.remove(this)
  }
}

/** Stored at `endpoint.grpcChannel`: close() closes every channel (mesh-apply's closePool). */
export class EndpointChannels {
  readonly conns: EndpointConnection[] = []
  closed = false
  private timer: NodeJS.Timeout | undefined = undefined

  constructor(private readonly make: ChannelMaker, private readonly limits: Readonly<ConnectionLimits>) {}

  /**
   * The connection for the next call: the least-loaded one, or a new one when every connection
   * carries `streamsPerConnection` calls (up to `maxPerEndpoint`). O(connections), no allocation.
   * The caller counts the call in (`active++`, `started++`) once the call is made.
   */
  pick(): EndpointConnection {
    const conns = this.conns
    let best: EndpointConnection | undefined
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i]!
      if (best === undefined || c.active < best.active) best = c
    }
    if (best === undefined || (best.active >= this.limits.streamsPerConnection && conns.length < this.limits.maxPerEndpoint)) best = this.add()
    return best
  }

  /** The first connection's state (tests and the warm-up read it as the endpoint's). */
  getConnectivityState(tryToConnect: boolean): ReturnType<Channel['getConnectivityState']> {
    const c = this.conns[0] ?? (tryToConnect && !this.closed ? this.add() : undefined)
    return c ? c.channel.getConnectivityState(tryToConnect) : 4 // SHUTDOWN (or not made yet)
  }

  /** Makes the first connection and has it connect now, so no call waits for a handshake. */
  warm(): void {
    if (this.conns.length === 0 && !this.closed) this.add()
  }

  private add(): EndpointConnection {
    const { channel, bind } = this.make(this.conns.length > 0)
    const c = new EndpointConnection(channel, this)
    channel.getConnectivityState(true)
    this.conns.push(c)
    bind?.(c)
    if (this.conns.length > 1 && this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.limits.idleMs)
      this.timer.unref()
    }
    return c
  }

  /** Connections beyond the first that carried no call since the last sweep are closed. */
  private sweep(): void {
    const conns = this.conns
    for (let i = conns.length - 1; i >= 1; i--) {
      const c = conns[i]!
      if (c.active === 0 && c.started === c.sweptAt) this.remove(c)
      else c.sweptAt = c.started
    }
    this.stopSweepIfOne()
  }

  private stopSweepIfOne(): void {
    if (this.conns.length <= 1 && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  /** Takes one connection out and closes it (calls already on it finish). */
  remove(c: EndpointConnection): void {
    if (c.closed) return
    c.closed = true
    const i = this.conns.indexOf(c)
    if (i >= 0) this.conns.splice(i, 1)
    c.channel.close()
    this.stopSweepIfOne()
  }

  /** Closes every connection; calls already on them finish. The endpoint's next call makes a new set. */
  close(): void {
    this.closed = true
    for (const c of [...this.conns]) this.remove(c)
  }
}

// The channel a meshed grpc-js client is given as `channelOverride`. grpc-js calls createCall once
// per call; the mesh runs each call's attempts itself on per-endpoint channels (endpoint-channels.ts),
// so balancing, retries and routing happen per call and per attempt, as for HTTP. A client's own
// per-call `interceptors` option replaces its client-level interceptors in grpc-js; a channel
// cannot be skipped that way, which is why the mesh is a channel and not an interceptor.
import type { ChannelInterface, Deadline } from '@grpc/grpc-js'
import type { Call } from '@grpc/grpc-js/build/src/call-interface.js'
import type { ServerSurfaceCall } from '@grpc/grpc-js/build/src/server-call.js'
import { MeshClientCall, type ClientCallDeps } from './client-call.js'

export class MeshChannel implements ChannelInterface {
  constructor(
    private readonly deps: ClientCallDeps,
    readonly service: string,
  ) {}

  /** The endpoint channels belong to the mesh (mesh.close() closes them); a client's close() leaves them. */
  close(): void {}

  getTarget(): string {
    return `weft:${this.service}`
  }

  /** Ready while the mesh is open: each call picks a live endpoint itself. */
  getConnectivityState(): ReturnType<ChannelInterface['getConnectivityState']> {
    const s = this.deps.grpc.connectivityState
    return this.deps.isClosed() ? s.SHUTDOWN : s.READY
  }

  watchConnectivityState(_current: unknown, _deadline: Deadline, callback: (error?: Error) => void): void {
    setImmediate(callback)
  }

  getChannelzRef(): ReturnType<ChannelInterface['getChannelzRef']> {
    return { kind: 'channel', id: 0, name: this.getTarget() } as ReturnType<ChannelInterface['getChannelzRef']>
  }

  createCall(method: string, deadline: Deadline, _host: string | null | undefined, parentCall: ServerSurfaceCall | null, propagateFlags: number | null | undefined): Call {
    return new MeshClientCall(this.deps, this.service, method, deadline, parentCall, propagateFlags ?? undefined)
  }
}

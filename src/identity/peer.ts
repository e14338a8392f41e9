// The verified identity of the peer on an inbound connection: set on the socket by the TLS front
// door (or read from grpc-js's auth context) once its SVID has been checked, read per request.
import type { Socket } from 'node:net'

export interface PeerIdentity {
  /** The peer's SPIFFE ID, "spiffe://td/ns/<namespace>/sa/<service>". */
  readonly id: string
  readonly trustDomain: string
  /** From a workload ID's path (/ns/<namespace>/sa/<service>); undefined for other paths. */
  readonly namespace: string | undefined
  readonly service: string | undefined
}

/** Where the front door leaves the checked identity on a TLS socket. */
export const PEER_IDENTITY = Symbol.for('weft.peerIdentity')

type WithPeer = { [PEER_IDENTITY]?: PeerIdentity }

/** The checked peer identity of a connection, if it came over mTLS. */
export function peerOf(socket: Socket | undefined | null): PeerIdentity | undefined {
  return socket ? (socket as unknown as WithPeer)[PEER_IDENTITY] : undefined
}

export function setPeer(socket: Socket, peer: PeerIdentity): void {
  ;(socket as unknown as WithPeer)[PEER_IDENTITY] = peer
}

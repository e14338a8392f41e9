// The server certificate (with its chain: node passes `getPeerCertificate(true)`) that the mesh's
// checkServerIdentity last accepted (tls-material.ts). Node calls checkServerIdentity and then
// emits 'secureConnect' in one synchronous run, so a connector's callback reads the chain of its
// own socket here, where asking the socket again would build the chain a second time (hundreds of
// µs a connection: bench/tls-handshake.ts). Read once: take clears it. No imports: the connection
// pools load this with or without the certificate code.
import type { PeerCertificate } from 'node:tls'

let verifiedPeer: PeerCertificate | undefined

export function setVerifiedPeer(cert: PeerCertificate | undefined): void {
  verifiedPeer = cert
}

/** The chain of the connection whose handshake just passed the check, once. */
export function takeVerifiedPeer(): PeerCertificate | undefined {
  const c = verifiedPeer
  verifiedPeer = undefined
  return c
}

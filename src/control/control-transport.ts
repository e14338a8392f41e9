// How an instance's calls reach the daemon: with a certificate, the same daemon over mTLS (https on
// the same port: the daemon tells TLS from plaintext by the first byte) on an agent made for that
// certificate, the previous agent closing once its requests (a watch stream) end; without one
// (first contact, or a certificate that expired unrenewed), plaintext with tokens. Once an instance
// has a certificate it never falls back to plaintext because a handshake failed: that would hand
// its tokens to whoever made the handshake fail.
import type { ConnectionOptions } from 'node:tls'
import { Agent } from 'undici'

export interface Route {
  /** The daemon URL to call (https:// over mTLS). */
  base: string
  dispatcher: Agent
  /** mTLS: the certificate is the credential, no instance token is sent. */
  secure: boolean
}

export class ControlTransport {
  private readonly plain = new Agent({ keepAliveTimeout: 30_000 })
  private tlsAgent: Agent | undefined
  private tlsOptions: ConnectionOptions | undefined

  /** `tls`: the instance's current client options for the daemon, or undefined without a certificate. */
  constructor(private readonly tls: (() => ConnectionOptions | undefined) | undefined) {}

  /** Whether calls go over mTLS now. */
  get secure(): boolean {
    return this.tls?.() !== undefined
  }

  /** Where a call to `url` (the daemon's configured http URL) goes now. */
  route(url: string): Route {
    const options = this.tls?.()
    if (!options) return { base: url, dispatcher: this.plain, secure: false }
    if (options !== this.tlsOptions || !this.tlsAgent) {
      const old = this.tlsAgent
      // No session cache: a resumed session skips checkServerIdentity (identity/tls-material.ts).
      this.tlsAgent = new Agent({ keepAliveTimeout: 30_000, connect: { ...options, maxCachedSessions: 0 } })
      this.tlsOptions = options
      void old?.close().catch(() => {})
    }
    return { base: url.replace(/^http:/i, 'https:'), dispatcher: this.tlsAgent, secure: true }
  }

  async close(): Promise<void> {
    await Promise.all([this.plain.close().catch(() => {}), this.tlsAgent?.close().catch(() => {})])
  }
}

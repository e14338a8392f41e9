// A keep-alive HTTPS client on one connection presenting a client certificate, counting its
// connections: how the identity tests hold a connection open across a trust or policy change
// (bundle rotation, certificate expiry, revocation) and then try a new handshake.
import { Client } from 'undici'

export interface ClientCert {
  certPem: string
  keyPem: string
}

/** A certificate, key and trust roots as TLS material holds them (a mesh's identity.current()). */
export function certOf(m: { certChainPem: readonly string[]; keyPem: string }): ClientCert {
  return { certPem: m.certChainPem.join('\n'), keyPem: m.keyPem }
}

export function heldTlsClient(port: number, cert: ClientCert, roots: readonly string[], host?: string) {
  const c = new Client(`https://127.0.0.1:${port}`, {
    connect: { cert: cert.certPem, key: cert.keyPem, ca: [...roots], checkServerIdentity: () => undefined },
    keepAliveTimeout: 60_000,
  })
  const counts = { connects: 0, disconnects: 0 }
  c.on('connect', () => counts.connects++)
  c.on('disconnect', () => counts.disconnects++)
  return {
    counts,
    async get(path = '/'): Promise<{ status: number; connection: string | undefined; body: string }> {
      const r = await c.request({ path, method: 'GET', ...(host ? { headers: { host } } : {}) })
      return { status: r.statusCode, connection: r.headers.connection as string | undefined, body: await r.body.text() }
    },
    close: () => c.destroy().catch(() => {}),
  }
}

// The upstream of the mTLS benches, in its own process: plain node:https servers (not meshed) with
// an SVID for `payments` from the bench daemon's CA, client certificate required and verified
// against the trust bundle (requestCert, rejectUnauthorized). node's defaults otherwise, so session
// tickets are issued: a client that offers a session resumes, one that does not (Weft) does not.
// Listeners on 127.0.0.1, all answering 200 `ok`:
//   keepalive — mTLS, keep-alive; close — mTLS, `connection: close` on every answer (every
//   request a new connection); plain — http keep-alive; plain-close — http, `connection: close`.
// Forked with IPC (startTlsUpstream in mtls-kit.ts) with `--data-dir D`: sends { ports }, answers
// 'stats' with { cpu, tls: { handshakes, resumed, errors } }, exits when the parent goes away.
import http from 'node:http'
import https from 'node:https'
import type { TLSSocket } from 'node:tls'
import { contextOptions, issueSvid } from './svid.js'

const dataDir = process.argv[process.argv.indexOf('--data-dir') + 1]!
const svid = await issueSvid(dataDir, 'payments')
const BODY = Buffer.from('ok')
const tls = { handshakes: 0, resumed: 0, errors: 0, firstError: undefined as string | undefined }

function handler(close: boolean): http.RequestListener {
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain', 'content-length': BODY.length, ...(close ? { connection: 'close' } : {}) }
  return (_req, res) => {
    res.writeHead(200, headers)
    res.end(BODY)
  }
}

function listen(server: http.Server): Promise<number> {
  server.keepAliveTimeout = 60_000
  server.headersTimeout = 65_000
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
}

function secure(close: boolean): https.Server {
  // Tickets left on (no SSL_OP_NO_TICKET): the server does not take the client's side of the choice.
  const server = https.createServer({ ...contextOptions(svid, false), requestCert: true, rejectUnauthorized: true }, handler(close))
  server.on('secureConnection', (s: TLSSocket) => {
    tls.handshakes++
    if (s.isSessionReused()) tls.resumed++
  })
  server.on('tlsClientError', (err: Error) => {
    tls.errors++
    tls.firstError ??= err.message
  })
  return server
}

const [keepalive, close, plain, plainClose] = await Promise.all([listen(secure(false)), listen(secure(true)), listen(http.createServer(handler(false))), listen(http.createServer(handler(true)))])
process.on('message', (msg) => {
  if (msg === 'stats') process.send!({ cpu: process.cpuUsage(), tls: { ...tls } })
})
process.on('disconnect', () => process.exit(0))
process.send!({ ports: { keepalive, close, plain, plainClose } })

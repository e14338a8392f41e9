// Upstream for the benchmarks: a minimal keep-alive node:http server answering 'ok', run as a child process.
import http from 'node:http'

const count = Number(process.argv[process.argv.indexOf('--servers') + 1] ?? 1) || 1
const BODY = Buffer.from('ok')

function listen(): Promise<number> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length })
    res.end(BODY)
  })
  server.keepAliveTimeout = 60_000
  server.headersTimeout = 65_000
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)))
}

// Forked with IPC by startUpstream (lib/load.ts): sends { ports }, answers 'cpu' with { cpu }, exits when the parent goes away.
const ports = await Promise.all(Array.from({ length: count }, listen))
process.on('message', (msg) => {
  if (msg === 'cpu') process.send!({ cpu: process.cpuUsage() })
  else if (msg === 'stop') process.exit(0)
})
process.on('disconnect', () => process.exit(0))
process.send!({ ports })

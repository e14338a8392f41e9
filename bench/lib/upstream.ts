// Upstream for the benchmarks: a minimal keep-alive node:http server answering 'ok', run as a child process.
// Usage (from a parent, through child_process.fork with IPC): it listens on 127.0.0.1 port 0 `--servers N` times,
// sends { ports } once listening, answers { cpu } to 'cpu' messages and exits when the parent goes away.
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

const ports = await Promise.all(Array.from({ length: count }, listen))
process.on('message', (msg) => {
  if (msg === 'cpu') process.send!({ cpu: process.cpuUsage() })
  else if (msg === 'stop') process.exit(0)
})
process.on('disconnect', () => process.exit(0))
process.send!({ ports })

// Upstream for the gRPC benchmark: a plain grpc-js Server (no mesh) whose unary Get answers at once,
// bound to one or more ports on 127.0.0.1, run as a child process by startGrpcUpstream (grpc-kit.ts).
import { grpc, LedgerService, UPSTREAM_NAME, type Entry } from './grpc-kit.js'

const count = Number(process.argv[process.argv.indexOf('--ports') + 1] ?? 1) || 1
const server = new grpc.Server()
server.addService(LedgerService, {
  Get(call: grpc.ServerUnaryCall<{ id: string }, Entry>, cb: grpc.sendUnaryData<Entry>) {
    cb(null, { id: call.request.id, from: UPSTREAM_NAME, amount: 1 })
  },
})

const bind = () => new Promise<number>((resolve, reject) => {
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)))
})
const ports: number[] = []
for (let i = 0; i < count; i++) ports.push(await bind())

// Sends { ports }, answers 'cpu' with { cpu }, exits when the parent goes away (as lib/upstream.ts).
process.on('message', (msg) => {
  if (msg === 'cpu') process.send!({ cpu: process.cpuUsage() })
  else if (msg === 'stop') process.exit(0)
})
process.on('disconnect', () => {
  server.forceShutdown()
  process.exit(0)
})
process.send!({ ports })

// The smallest Weft program: one HTTP server, a mesh that knows it as "payments", one call through the mesh.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createMesh } from '../src/index.js'

// A plain node:http server standing in for the "payments" service.
const server = http.createServer((req, res) => res.end(`hello from payments (${req.method} ${req.url})\n`))
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const { port } = server.address() as AddressInfo

// The mesh for this workload ("checkout"), with one Service; retries, breaker and balancing use the defaults.
const mesh = await createMesh({
  service: 'checkout',
  config: [
    { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { endpoints: [{ address: `127.0.0.1:${port}` }] } },
  ],
})

try {
  // The URL names the service, not a host: the mesh picks the endpoint.
  const res = await mesh.fetch('http://payments/hello')
  console.log(res.status, await res.text())
  console.log('outbound stack, outermost first:')
  console.log(mesh.stack.describe())
} finally {
  await mesh.close()
  server.close()
}

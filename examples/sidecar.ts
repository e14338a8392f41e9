// A service that is not Node joins the mesh through `weft sidecar`: a control daemon, an "inventory"
// app that knows nothing of Weft (a plain node:http server standing in for a Go, Python or Java
// service) behind `weft sidecar` in a process of its own, and a meshed "checkout" calling
// http://inventory/… over mTLS. The app learns who called it from x-forwarded-client-cert; it calls
// back out through its sidecar's outbound proxy with `Host: checkout`.
// Run: node --import tsx examples/sidecar.ts
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMesh } from '../src/index.js'
import { startDaemon } from '../src/daemon/index.js'

const quiet = { info() {}, warn: (m: string) => console.error(`warn: ${m}`), error: (m: string) => console.error(`error: ${m}`) }
const dataDir = mkdtempSync(join(tmpdir(), 'weft-sidecar-example-'))
// The daemon's own log stays out of the way (a sidecar stopped at the end drops its watch mid-TLS).
const daemon = await startDaemon({ listen: '127.0.0.1:0', dataDir, logger: { info() {}, warn() {}, error: quiet.error }, print: () => {} })
const joinToken = readFileSync(join(dataDir, 'join.token'), 'utf8').trim()
let sidecar: ReturnType<typeof spawn> | undefined
let outboundPort = 0

// The "inventory" app: answers with what it was told about its caller, and asks checkout (through
// its sidecar's outbound proxy) for the cart it is counting.
const app = http.createServer((req, res) => {
  const proxy = http.request({ host: '127.0.0.1', port: outboundPort, path: '/cart', headers: { host: 'checkout', traceparent: req.headers.traceparent ?? '' } }, (cart) => {
    let body = ''
    cart.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
      res.end(`inventory: ${req.method} ${req.url}; caller ${req.headers['x-forwarded-client-cert']}; cart from checkout: ${cart.statusCode} ${body}\n`)
    })
  })
  proxy.on('error', (err) => res.end(`inventory: the call back to checkout failed: ${err.message}\n`))
  proxy.end()
})
await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
const appPort = (app.address() as AddressInfo).port

// checkout: a Node service with the mesh in process, serving /cart and calling inventory.
const checkout = await createMesh({ service: 'checkout', control: daemon.url, token: joinToken, logger: quiet })
const cartServer = http.createServer((_req, res) => res.end('3 items'))
await checkout.listen(cartServer, { port: 0, host: '127.0.0.1' })

try {
  // `weft sidecar` for inventory, as a supervisor would start it.
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
  sidecar = spawn(process.execPath, ['--import', 'tsx', main, 'sidecar', '--service', 'inventory', '--app', String(appPort), '--inbound', '127.0.0.1:0', '--outbound', '127.0.0.1:0', '--admin', 'off', '--control', daemon.url, '--token', joinToken], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    sidecar!.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) resolve(out.trim())
    })
    sidecar!.once('exit', (code) => reject(new Error(`weft sidecar exited (${code})`)))
  })
  console.log(line)
  outboundPort = Number(/outbound proxy 127\.0\.0\.1:(\d+)/.exec(line)![1])

  // The daemon tells checkout where inventory is (its sidecar's inbound listener) once it registers.
  for (let i = 0; i < 100; i++) {
    const res = await checkout.request('http://inventory/stock/42').catch(() => undefined)
    if (res?.statusCode === 200) {
      console.log(`checkout → inventory: ${res.statusCode} ${(await res.body.text()).trim()}`)
      break
    }
    await res?.body.text()
    await new Promise((r) => setTimeout(r, 100))
  }
} finally {
  sidecar?.kill('SIGTERM')
  await new Promise((r) => (sidecar && sidecar.exitCode === null ? sidecar.once('exit', r) : r(undefined)))
  await checkout.close()
  app.close()
  await daemon.close()
  rmSync(dataDir, { recursive: true, force: true })
}

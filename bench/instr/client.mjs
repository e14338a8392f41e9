// A client counted by bench/instr/main.ts under valgrind (plain node, no tsx): sends `count` GETs,
// 32 in flight, to the upstream on 127.0.0.1:<port>, reading each body, then exits.
// argv: <arm> <count> <port>. Arms: raw (undici Pool.request), raw-md (the same, sending the headers
// a mesh call adds), mesh (mesh.request through every default layer, one endpoint).
import { Pool } from 'undici'

const [arm, countArg, port] = process.argv.slice(2)
const count = Number(countArg)
const PATH = '/api/items?id=1'
const origin = `http://127.0.0.1:${port}`

async function sender() {
  if (arm === 'raw' || arm === 'raw-md') {
    const pool = new Pool(origin, { keepAliveTimeout: 10_000, connectTimeout: 5_000 })
    // Made up front, as in bench/http-client.ts's raw-md arm: the arm measures undici with the headers.
    const traceparents = Array.from({ length: 256 }, (_, i) => `00-${i.toString(16).padStart(32, 'a')}-${i.toString(16).padStart(16, 'b')}-01`)
    let n = 0
    const headers = () => ({ host: 'bench', 'weft-caller': 'bench', traceparent: traceparents[n++ & 255], 'weft-deadline-ms': '15000' })
    return async () => {
      const r = await pool.request(arm === 'raw' ? { method: 'GET', path: PATH } : { method: 'GET', path: PATH, headers: headers() })
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`)
      await r.body.text()
    }
  }
  if (arm === 'mesh') {
    const { createMesh } = await import('../../dist/index.js')
    const mesh = await createMesh({
      service: 'bench',
      logger: { info() {}, warn: console.error, error: console.error },
      config: [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'bench' }, spec: { endpoints: [{ address: `127.0.0.1:${port}` }] } }],
    })
    return async () => {
      const r = await mesh.request(`http://bench${PATH}`)
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`)
      await r.body.text()
    }
  }
  throw new Error(`no client arm "${arm}"`)
}

const send = await sender()
let sent = 0
await Promise.all(Array.from({ length: 32 }, async () => {
  while (sent < count) {
    sent++
    await send()
  }
}))
process.exit(0)

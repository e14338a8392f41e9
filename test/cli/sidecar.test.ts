// `weft sidecar` as a process: a static policy file, an app on loopback, a caller through the
// outbound proxy reaching the app through the inbound listener; health and metrics on the admin
// listener (not on the app's paths); SIGTERM drains and exits 0. Real child process, real servers.
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { request } from 'undici'
import { cli, eventually, runLongCli } from './kit.js'

function runSidecar(args: string[]) {
  return runLongCli(['sidecar', ...args])
}

test('weft sidecar: one line says where its listeners are; the app is reached through inbound, services through outbound; /healthz and /metrics are on the admin port; SIGTERM exits 0', async (t) => {
  const app = http.createServer((req, res) => res.end(`app saw ${req.method} ${req.url} from ${req.headers['weft-caller'] ?? 'nobody'}`))
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
  t.after(() => new Promise((r) => app.close(r)))
  const appPort = (app.address() as AddressInfo).port
  const dir = mkdtempSync(join(tmpdir(), 'weft-sidecar-cli-'))
  const file = join(dir, 'weft.yaml')
  // Its own inbound port is known only once it runs: it starts with another service, then the file changes.
  writeFileSync(file, 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: ledger }\nspec:\n  endpoints: [{ address: "127.0.0.1:9" }]\n')
  // The sidecar's own service is also a target, so its outbound proxy can call it through its inbound side.
  const sc = runSidecar(['--service', 'orders', '--app', String(appPort), '--inbound', '127.0.0.1:0', '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--config', file, '--drain-timeout', '2s', '--access-log', 'all'])
  t.after(() => void sc.child.kill('SIGKILL'))
  const line = await eventually(async () => {
    if (sc.child.exitCode !== null) throw new Error(`weft sidecar exited: ${sc.out.stderr}`)
    return /weft sidecar: orders inbound 127\.0\.0\.1:(\d+) -> app 127\.0\.0\.1:\d+; outbound proxy 127\.0\.0\.1:(\d+) \(HTTP_PROXY=http:\/\/127\.0\.0\.1:\d+\); admin 127\.0\.0\.1:(\d+)/.exec(sc.out.stdout) ?? undefined
  }, 20_000, 'the sidecar\'s line on stdout')
  const [, inbound, outbound, admin] = line.map(Number) as [number, number, number, number]
  writeFileSync(file, `apiVersion: weft/v1\nkind: Service\nmetadata: { name: orders }\nspec:\n  endpoints: [{ address: "127.0.0.1:${inbound}" }]\n`)
  // The file is watched: wait for the version with the endpoint.
  const r = await eventually(async () => {
    const res = await request(`http://127.0.0.1:${outbound}/orders/1`, { headers: { host: 'orders' } })
    const body = await res.body.text()
    return res.statusCode === 200 ? body : undefined
  }, 15_000, 'a call through the outbound proxy')
  assert.equal(r, 'app saw GET /orders/1 from orders')

  const health = await request(`http://127.0.0.1:${admin}/healthz`)
  assert.equal(health.statusCode, 200)
  await health.body.text()
  const metrics = await (await request(`http://127.0.0.1:${admin}/metrics`)).body.text()
  assert.match(metrics, /http_server_request_duration_seconds_count\{[^}]*source_service="orders"/)
  // /healthz on the inbound port is the app's own path.
  const appHealth = await request(`http://127.0.0.1:${inbound}/healthz`)
  assert.equal(await appHealth.body.text(), 'app saw GET /healthz from nobody')

  // --access-log all: the call above as two JSON lines on stdout, outbound then inbound, one trace.
  const lines = sc.out.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  const call = lines.filter((l) => l.path === '/orders/1' && l.status === 200)
  assert.deepEqual(call.map((l) => l.direction).sort(), ['inbound', 'outbound'])
  assert.equal(call[0]!.trace_id, call[1]!.trace_id)

  sc.child.kill('SIGTERM')
  assert.deepEqual(await sc.exited, { code: 0, signal: null }, sc.out.stderr)
  assert.match(sc.out.stderr, /weft sidecar: SIGTERM, draining/)
})

test('weft sidecar: missing or bad flags are usage errors (exit 2) saying what is wrong, before starting anything', async () => {
  const { sidecar } = await import('../../src/cli/sidecar.js')
  const { UsageError } = await import('../../src/cli/args.js')
  const cases: [string[], RegExp][] = [
    [['--app', '8080'], /--service NAME is required/],
    [['--service', 'orders'], /--app HOST:PORT \(or PORT\) is required/],
    [['--service', 'orders', '--app', '127.0.0.1:0'], /--app needs the port the application listens on/],
    [['--service', 'orders', '--app', '8080', '--inbound', 'nowhere'], /--inbound must be HOST:PORT or PORT/],
    [['--service', 'orders', '--app', '8080', '--config', 'a.yaml', '--control', 'http://127.0.0.1:1'], /give one/],
    [['--service', 'orders', '--app', '8080', '--label', 'novalue'], /--label must be key=value/],
    [['--service', 'orders', '--app', '8080', '--access-log', 'some'], /--access-log must be all, errors or off/],
    [['--service', 'orders', '--app', '8080', '--route', 'users/:id'], /--route\[0\]: "users\/:id" must start with \//],
  ]
  // In this process (each case throws before anything starts); one through the CLI for the exit status.
  for (const [args, message] of cases) await assert.rejects(sidecar(args), (err: Error) => err instanceof UsageError && message.test(err.message), args.join(' '))
  const r = await cli(['sidecar', ...cases[0]![0]])
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stderr, cases[0]![1])
})

test('weft sidecar under a daemon: its inbound listener on 0.0.0.0 registers as --advertise with its --label, for the app\'s service', async (t) => {
  const { startCliDaemon } = await import('./kit.js')
  const d = await startCliDaemon()
  t.after(() => d.daemon.close())
  const sc = runSidecar(['--service', 'orders', '--app', '127.0.0.1:9', '--inbound', '0.0.0.0:0', '--outbound', 'off', '--admin', 'off', '--control', d.url, '--token', d.joinToken, '--advertise', '127.0.0.3', '--label', 'version=v2'])
  t.after(() => void sc.child.kill('SIGKILL'))
  const inbound = await eventually(async () => {
    if (sc.child.exitCode !== null) throw new Error(`weft sidecar exited: ${sc.out.stderr}`)
    return /inbound 0\.0\.0\.0:(\d+)/.exec(sc.out.stdout)?.[1]
  }, 20_000, 'the sidecar\'s line on stdout')
  assert.doesNotMatch(sc.out.stdout, /outbound proxy|admin/)
  const listed = await eventually(async () => {
    const r = await cli(['get', 'endpoints', '-o', 'json', '--control', d.url, '--token', d.adminToken])
    return r.status === 0 && r.stdout.includes(`127.0.0.3:${inbound}`) ? r.stdout : undefined
  }, 10_000, 'the advertised endpoint in weft get endpoints')
  assert.match(listed, /"default\/orders": \[/)
  assert.match(listed, /"version":\s*"v2"/)
  sc.child.kill('SIGTERM')
  assert.deepEqual(await sc.exited, { code: 0, signal: null }, sc.out.stderr)
})

import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { call, cli, startCliDaemon, type CliDaemon } from './kit.js'

let d: CliDaemon
before(async () => {
  d = await startCliDaemon()
})
after(() => d.close())

test('the daemon URL and admin token from WEFT_CONTROL / WEFT_TOKEN', async () => {
  const r = await cli(['get', 'services'], { env: { WEFT_CONTROL: d.url, WEFT_TOKEN: d.adminToken } })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, 'no services\n')
})

test('the daemon URL and admin token from the data dir: --data-dir, and ./.weft-daemon by default', async () => {
  const r = await cli(['get', 'policies', '--data-dir', d.dataDir])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^no policy resources \(version \d+\)\n$/)
  // The default data dir is ./.weft-daemon of the working directory.
  const cwd = mkdtempSync(join(tmpdir(), 'weft-cwd-'))
  mkdirSync(join(cwd, '.weft-daemon'))
  writeFileSync(join(cwd, '.weft-daemon', 'daemon.json'), JSON.stringify({ url: d.url, pid: process.pid }))
  writeFileSync(join(cwd, '.weft-daemon', 'admin.token'), d.adminToken + '\n')
  const def = await cli(['get', 'instances'], { cwd })
  assert.equal(def.status, 0, def.stderr)
  assert.equal(def.stdout, 'no instances registered\n')
  // Flags, and the files of an explicit --data-dir, win over the environment; the environment
  // wins over ./.weft-daemon.
  const wrongEnv = { WEFT_CONTROL: 'http://127.0.0.1:1', WEFT_TOKEN: 'nope' }
  const flags = await cli(['get', 'services', '--control', d.url, '--token', d.adminToken], { env: wrongEnv })
  assert.equal(flags.status, 0, flags.stderr)
  const dir = await cli(['get', 'services', '--data-dir', d.dataDir], { env: wrongEnv })
  assert.equal(dir.status, 0, dir.stderr)
  const env = await cli(['get', 'services'], { cwd, env: wrongEnv })
  assert.equal(env.status, 1)
  assert.match(env.stderr, /cannot reach the control daemon at http:\/\/127\.0\.0\.1:1 /)
})

test('a wrong or missing token: the daemon\'s message, exit 1', async () => {
  const wrong = await cli(['get', 'services', '--control', d.url, '--token', 'not-a-token'])
  assert.equal(wrong.status, 1)
  assert.match(wrong.stderr, /^weft: WEFT_ERR_UNAUTHENTICATED: .+ \(token from --token\)\n$/)
  const cwd = mkdtempSync(join(tmpdir(), 'weft-cwd-'))
  const none = await cli(['status', '--control', d.url], { cwd })
  assert.equal(none.status, 1)
  assert.match(none.stderr, /WEFT_ERR_UNAUTHENTICATED: .+\(no admin token: pass --token, set WEFT_TOKEN, or --data-dir of the daemon\)/)
  // A join token is not an admin token.
  const join_ = await cli(['get', 'services', '--control', d.url, '--token', d.joinToken])
  assert.equal(join_.status, 1)
  assert.match(join_.stderr, /^weft: WEFT_ERR_FORBIDDEN: /)
})

test('weft token create prints a join token that registers only its service', async () => {
  const r = await cli(['token', 'create', '--service', 'payments', ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  const token = r.stdout.trim()
  assert.match(token, /^\S{16,}$/)
  const ok = await call(d.url, 'POST', '/v1/register', token, { service: 'payments' })
  assert.equal(ok.status, 201)
  const no = await call(d.url, 'POST', '/v1/register', token, { service: 'ledger' })
  assert.equal(no.status, 403)
})

test('an unreachable daemon: one line naming the URL, exit 1; usage errors exit 2', async () => {
  const r = await cli(['get', 'services', '--control', 'http://127.0.0.1:1', '--token', 'x'])
  assert.equal(r.status, 1)
  assert.equal(r.stderr.trimEnd().split('\n').length, 1)
  assert.match(r.stderr, /^weft: cannot reach the control daemon at http:\/\/127\.0\.0\.1:1 \(connection refused\)/)
  const env = await cli(['status'], { env: { WEFT_CONTROL: '127.0.0.1:1' } })
  assert.equal(env.status, 1)
  assert.match(env.stderr, /cannot reach the control daemon at http:\/\/127\.0\.0\.1:1 /)
  const flag = await cli(['get', 'services', '--bogus'])
  assert.equal(flag.status, 2)
  assert.match(flag.stderr, /^weft get: unknown flag --bogus\n/)
  const missing = await cli(['get', 'services', '--control'])
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, /--control needs a value/)
})

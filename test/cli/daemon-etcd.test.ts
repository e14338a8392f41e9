import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { startEtcd } from '../helpers/etcd.js'
import { cli, cliProcessArgs, eventually, SERVICE_PAYMENTS, writeFile } from './kit.js'

test('weft daemon --etcd keeps the policy in etcd: apply, then a second daemon on the same etcd serves it', async (t) => {
  const etcd = await startEtcd()
  t.after(() => etcd.stop())
  const start = (dir: string) => {
    const child = spawn(process.execPath, cliProcessArgs(['daemon', '--etcd', etcd.endpoint, '--data-dir', dir, '--listen', '127.0.0.1:0', '--lease-ttl', '3s']), { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    child.stdout.resume()
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000)
    void exited.then(() => clearTimeout(kill))
    t.after(() => void child.kill('SIGKILL'))
    const ready = eventually(async () => {
      if (child.exitCode !== null) throw new Error(`weft daemon exited ${child.exitCode}: ${stderr}`)
      try {
        return (JSON.parse(readFileSync(join(dir, 'daemon.json'), 'utf8')) as { pid: number }).pid === child.pid
      } catch {
        return false
      }
    }, 30_000, 'weft daemon --etcd to start')
    return { child, exited, ready, stderr: () => stderr }
  }

  const dirA = mkdtempSync(join(tmpdir(), 'weft-etcd-a-'))
  const a = start(dirA)
  await a.ready
  const applied = await cli(['apply', '-f', writeFile(dirA, 'p.yaml', SERVICE_PAYMENTS), '--data-dir', dirA])
  assert.equal(applied.status, 0, applied.stderr)
  assert.match(applied.stdout, /Service\/payments created\nRoute\/payments-canary created\napplied .*: version \d+\n/)
  a.child.kill('SIGTERM')
  assert.equal(await a.exited, 0, a.stderr())

  // Another daemon with another data dir but the same etcd: the policy (and the admin token's
  // hash) live in etcd, so the first daemon's admin token works here too.
  const dirB = mkdtempSync(join(tmpdir(), 'weft-etcd-b-'))
  const b = start(dirB)
  await b.ready
  const url = (JSON.parse(readFileSync(join(dirB, 'daemon.json'), 'utf8')) as { url: string }).url
  const pol = await cli(['get', 'policies', '--control', url, '--token', readFileSync(join(dirA, 'admin.token'), 'utf8').trim()])
  assert.equal(pol.status, 0, pol.stderr)
  assert.match(pol.stdout, /Service\s+default\s+payments\nRoute\s+default\s+payments-canary\n/)
  // B's data dir holds no admin token (the store's is A's, and B says so): --data-dir of B finds
  // B, and the token comes from WEFT_TOKEN.
  assert.equal(existsSync(join(dirB, 'admin.token')), false)
  assert.match(b.stderr(), /admin token was made by another daemon sharing it/)
  const viaDir = await cli(['get', 'policies', '--data-dir', dirB], { env: { WEFT_TOKEN: readFileSync(join(dirA, 'admin.token'), 'utf8').trim() } })
  assert.equal(viaDir.status, 0, viaDir.stderr)
  assert.match(viaDir.stdout, /Service\s+default\s+payments\n/)
  b.child.kill('SIGTERM')
  assert.equal(await b.exited, 0, b.stderr())
})

test('weft daemon --etcd without the etcd3 package: one line saying what to install, exit 1', async () => {
  const hide = fileURLToPath(new URL('../etcd/hide-etcd3.cjs', import.meta.url))
  const r = await cli(['daemon', '--etcd', 'http://127.0.0.1:1', '--data-dir', mkdtempSync(join(tmpdir(), 'weft-noetcd-'))], { nodeArgs: ['--require', hide] })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^weft daemon: cannot use --etcd: install etcd3 next to weft to use --etcd/)
})

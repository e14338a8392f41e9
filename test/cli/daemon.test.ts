import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { cli, eventually, runLongCli } from './kit.js'

/** `weft daemon` as a child process. */
function runDaemon(args: string[]) {
  return runLongCli(['daemon', ...args])
}

test('weft daemon prints the admin token once, writes daemon.json, serves the CLI, and stops on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-daemon-cli-'))
  const first = runDaemon(['--listen', '127.0.0.1:0', '--data-dir', dir, '--lease-ttl', '5s'])
  const info = await eventually(async () => {
    if (first.child.exitCode !== null) throw new Error(`weft daemon exited: ${first.out.stderr}`)
    if (!existsSync(join(dir, 'daemon.json'))) return undefined
    try {
      return JSON.parse(readFileSync(join(dir, 'daemon.json'), 'utf8')) as { url: string; pid: number }
    } catch {
      return undefined // written atomically, but be safe
    }
  }, 20_000, 'daemon.json')
  assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  assert.equal(info.pid, first.child.pid)
  const admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim()
  await eventually(async () => first.out.stdout.includes(admin), 10_000, 'the admin token on stdout')
  assert.equal(first.out.stdout.split(admin).length - 1, 1, 'printed once')

  // The other commands find it through the data dir.
  const get = await cli(['get', 'services', '--data-dir', dir])
  assert.equal(get.status, 0, get.stderr)

  first.child.kill('SIGTERM')
  const end = await first.exited
  assert.deepEqual(end, { code: 0, signal: null }, first.out.stderr)

  // A second start with the same data dir keeps the tokens and does not print them again.
  const second = runDaemon(['--listen', '127.0.0.1:0', '--data-dir', dir])
  await eventually(async () => {
    if (second.child.exitCode !== null) throw new Error(`weft daemon exited: ${second.out.stderr}`)
    try {
      const j = JSON.parse(readFileSync(join(dir, 'daemon.json'), 'utf8')) as { pid: number }
      return j.pid === second.child.pid ? true : undefined
    } catch {
      return undefined
    }
  }, 20_000, 'daemon.json of the second start')
  const again = await cli(['get', 'services', '--data-dir', dir])
  assert.equal(again.status, 0, again.stderr)
  assert.ok(!second.out.stdout.includes(admin), 'the admin token is printed only at the first start')
  second.child.kill('SIGINT')
  assert.deepEqual(await second.exited, { code: 0, signal: null }, second.out.stderr)
})

test('weft daemon: bad flags exit 2 before starting anything', async () => {
  const r = await cli(['daemon', '--lease-ttl', 'soon'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--lease-ttl must be a duration/)
  const l = await cli(['daemon', '--listen', 'nowhere'])
  assert.equal(l.status, 2)
  assert.match(l.stderr, /--listen must be host:port/)
})

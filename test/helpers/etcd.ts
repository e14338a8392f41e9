// A real etcd (the Debian package etcd-server, /usr/bin/etcd) on 127.0.0.1 for the etcd store
// tests: free client and peer ports, a temp data dir, and a bounded life. A missing binary is an
// error, never a skip: the suite must not pass without having run these tests.
//
// etcd runs under coreutils `timeout` in a process group of its own: stop() ends the group and
// removes the data dir, a process exit kills it, and if the test process is killed outright etcd
// still ends when `timeout` fires (maxLifetimeMs).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.js'

export interface TestEtcd {
  /** "http://127.0.0.1:PORT" */
  endpoint: string
  clientPort: number
  /** Stops etcd (SIGTERM, SIGKILL after 3 s) and removes its data dir. Idempotent. */
  stop(): Promise<void>
}

export interface TestEtcdOptions {
  /** etcd is killed after this long whatever happens (default 5 minutes). */
  maxLifetimeMs?: number
  /** How long to wait for etcd to answer /health (default 20 s). */
  startTimeoutMs?: number
}

const CANDIDATES = [process.env.WEFT_ETCD_BIN, '/usr/bin/etcd', '/usr/local/bin/etcd']

export function etcdBinary(): string {
  const bin = CANDIDATES.find((p): p is string => !!p && existsSync(p))
  if (!bin) {
    throw new Error('etcd not found (looked for /usr/bin/etcd, /usr/local/bin/etcd, $WEFT_ETCD_BIN): install the Debian package etcd-server (apt-get install -y etcd-server), as .ci/run does')
  }
  return bin
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function startEtcd(opts: TestEtcdOptions = {}): Promise<TestEtcd> {
  const bin = etcdBinary()
  let lastError: Error | undefined
  // A free port can be taken between the probe and etcd's bind: try fresh ports a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin, opts)
    } catch (err) {
      lastError = err as Error
      if (!/address already in use/i.test(lastError.message)) break
    }
  }
  throw lastError
}

async function startOnce(bin: string, opts: TestEtcdOptions): Promise<TestEtcd> {
  const clientPort = await freePort()
  let peerPort = await freePort()
  while (peerPort === clientPort) peerPort = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-etcd-'))
  const client = `http://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  const lifetimeS = Math.ceil((opts.maxLifetimeMs ?? 300_000) / 1000)
  const args = [
    '-k', '2', String(lifetimeS), bin,
    '--name', 'weft-test',
    '--data-dir', dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `weft-test=${peer}`,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    '--log-level', 'error',
  ]
  const child = spawn('timeout', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000)
  })
  let exited = false
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true
    resolve()
  }))
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      // already gone
    }
  }
  const onProcessExit = () => {
    killGroup('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
  process.once('exit', onProcessExit)

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!exited) {
        killGroup('SIGTERM')
        const t = setTimeout(() => killGroup('SIGKILL'), 3000)
        await exit
        clearTimeout(t)
      }
      process.removeListener('exit', onProcessExit)
      rmSync(dataDir, { recursive: true, force: true })
    })()
    return stopped
  }

  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000)
  for (;;) {
    if (exited) {
      await stop()
      throw new Error(`etcd exited before answering: ${stderr.trim() || '(no output)'}`)
    }
    if (await healthy(client)) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`etcd did not answer ${client}/health within ${opts.startTimeoutMs ?? 20_000} ms: ${stderr.trim()}`)
    }
    await sleep(100)
  }
  return { endpoint: client, clientPort, stop }
}

async function healthy(base: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(1000) })
    const body = (await res.json()) as { health?: string }
    return body.health === 'true'
  } catch {
    return false
  }
}

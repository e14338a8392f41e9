// Test kit for the `weft` CLI: runs the CLI as a subprocess (async: the daemon it talks to runs in
// this process), and adds the CLI's flags and an ACK loop to the daemon test helper (a daemon on
// 127.0.0.1:0 in a temp data dir; the instance side driven with plain HTTP calls).
import { spawn } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { WatchMessage } from '../../src/control/protocol.js'
import type { DaemonOptions } from '../../src/daemon/index.js'
import { call, eventually, startTestDaemon, type TestDaemon, type WatchStream } from '../helpers/daemon.js'

export { call, eventually, openWatch, register } from '../helpers/daemon.js'

const ROOT = resolve(import.meta.dirname, '../..')
const MAIN = join(ROOT, 'src/cli/main.ts')
// Absolute, so the CLI can run from a temp dir (its default data dir is ./.weft-daemon).
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href

export interface CliResult {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  cwd?: string
  env?: Record<string, string>
  stdin?: string
  /** Extra node flags before the script (e.g. a --require preload). */
  nodeArgs?: string[]
}

const DIST_CLI = join(ROOT, 'dist/cli.js')

/** The newest modification time of the files under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/**
 * How `weft` runs in tests: the built CLI (dist/cli.js, what users run) when it is newer than every
 * source file — `npm test` builds it first — else the sources through tsx, so a stale build is never
 * what a test runs. The built one starts in ~0.2 s against tsx's ~0.8 s, and the suite starts the
 * CLI over a hundred times.
 */
const ENTRY: string[] = (() => {
  try {
    const built = statSync(DIST_CLI).mtimeMs
    return Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(ROOT, 'adapters'))) <= built ? [DIST_CLI] : ['--import', TSX, MAIN]
  } catch {
    return ['--import', TSX, MAIN]
  }
})()

/** node's arguments to run `weft ARGS`. */
export function cliProcessArgs(args: string[]): string[] {
  return [...ENTRY, ...args]
}

/** A long-running `weft ARGS` (daemon, sidecar) as a child process; its output collected as it comes; killed after 60 s. */
export function runLongCli(args: string[]) {
  const child = spawn(process.execPath, cliProcessArgs(args), { stdio: ['ignore', 'pipe', 'pipe'] })
  const out = { stdout: '', stderr: '' }
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000)
  void exited.then(() => clearTimeout(kill))
  return { child, out, exited }
}

/** Runs `weft ARGS` to its end (killed after 60 s). WEFT_* from this process's env are not passed. */
export function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_')) env[k] = v
  Object.assign(env, opts.env)
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...cliProcessArgs(args)], { cwd: opts.cwd ?? tmpdir(), env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  child.stdin.end(opts.stdin ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr })
    })
  })
}

export interface CliDaemon extends TestDaemon {
  /** Connection flags for the CLI: --control URL --token ADMIN. */
  flags: string[]
  close(): Promise<void>
}

/** A daemon for CLI tests (test/helpers/daemon.ts) with the CLI's connection flags. */
export async function startCliDaemon(extra: Partial<DaemonOptions> = {}): Promise<CliDaemon> {
  // Instances registered without a watch stay for the whole file: no lease expiry mid-test.
  const t = await startTestDaemon({ coalesceMs: 5, leaseTtlMs: 600_000, ...extra })
  return { ...t, flags: ['--control', t.url, '--token', t.adminToken], close: () => t.daemon.close() }
}

export function writeFile(dir: string, name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

/** The first non-ping message received so far, or to come, that `pred` accepts (10 s at most). */
export function waitFor(w: WatchStream, pred: (m: WatchMessage) => boolean): Promise<WatchMessage> {
  return eventually(async () => w.all.find((m) => m.type !== 'ping' && pred(m)), 10_000, 'a watch message')
}

interface StatusEntry {
  id: string
  state: string
  ackedVersion?: number
}

/** ACKs whatever the instance was sent until the daemon shows it SYNCED; resolves with its version. */
export async function syncInstance(d: CliDaemon, w: WatchStream, id: string, token: string): Promise<number> {
  let acked = -1
  return eventually(async () => {
    const sent = w.all.filter((m) => m.type !== 'ping')
    const last = sent[sent.length - 1]
    if (last && last.version !== acked) {
      const r = await call(d.url, 'POST', `/v1/instances/${id}/ack`, token, { version: last.version })
      if (r.status >= 300) throw new Error(`ack answered ${r.status}: ${JSON.stringify(r.body)}`)
      acked = last.version
    }
    const st = await call<{ instances: StatusEntry[] }>(d.url, 'GET', '/v1/status', d.adminToken)
    const me = st.body.instances.find((i) => i.id === id)
    return me?.state === 'SYNCED' && me.ackedVersion === acked ? acked : undefined
  }, 10_000, `${id} SYNCED`)
}

export const SERVICE_PAYMENTS = `apiVersion: weft/v1
kind: Service
metadata:
  name: payments
spec:
  timeout: 5s
---
apiVersion: weft/v1
kind: Route
metadata:
  name: payments-canary
spec:
  service: payments
  rules:
    - matches: [{ headers: { x-canary: { exact: "true" } } }]
      backends: [{ subset: { version: v2 } }]
    - matches: [{ path: { prefix: /charge } }]
      backends: [{ subset: { version: v1 }, weight: 90 }, { subset: { version: v2 }, weight: 10 }]
      timeout: 2s
`

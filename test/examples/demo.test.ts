// Runs examples/demo (shortened with DEMO_SECONDS=2) and examples/basic.ts as child processes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function run(file: string, env: Record<string, string>, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

const explain = (r: Run): string => `exit ${r.code} signal ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`

test('npm run demo: a short run exits 0 and prints the summary with retries absorbing the 503s', async () => {
  const r = await run('examples/demo/main.ts', { DEMO_SECONDS: '2' }, 30_000)
  assert.equal(r.code, 0, explain(r))
  const success = /^\s*success\s+([\d.]+)%/m.exec(r.stdout)
  assert.ok(success, `no success row in the summary\n${explain(r)}`)
  assert.ok(Number(success[1]) >= 95, `success ${success[1]}% < 95%\n${explain(r)}`)
  for (const row of ['requests', 'latency p50', 'latency p99', 'retries', 'ejections', 'split v1 / v2']) {
    assert.match(r.stdout, new RegExp(`^\\s*${row}\\s+\\S`, 'm'), `no "${row}" row\n${explain(r)}`)
  }
  assert.match(r.stdout, /upstream 503s absorbed by retries: [\d,]+/, explain(r))
  for (const name of ['v1-a', 'v1-b', 'v2']) assert.match(r.stdout, new RegExp(`^\\s*${name}\\s+v\\d`, 'm'), `no row for ${name}\n${explain(r)}`)
  // Not a TTY here, so progress comes as whole lines, never carriage returns.
  assert.ok(!r.stdout.includes('\r'), 'progress used \\r although stdout is not a TTY')
})

test('examples/basic.ts exits 0 and prints the body and the stack', async () => {
  const r = await run('examples/basic.ts', {}, 20_000)
  assert.equal(r.code, 0, explain(r))
  assert.match(r.stdout, /^200 hello from payments \(GET \/hello\)/m, explain(r))
  assert.match(r.stdout, /retry/, explain(r))
})

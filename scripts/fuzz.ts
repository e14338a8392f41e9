// `npm run fuzz -- [--seconds N] [--target NAME] [--jobs J] [--seed S]`: coverage-guided fuzzing
// of the parsers an attacker or a broken peer can feed (RELIABILITY B1; targets in
// test/fuzz/targets.ts). Each target runs in a process of its own (test/fuzz/worker.ts) for N
// seconds (default 60; CI runs 300, a nightly run 3600), J at a time (default 2). A finding — an
// exception the code must not raise, a broken property, an input slower than 1 s, an unhandled
// rejection, or a batch of inputs that hung the process (killed after 10 s without progress) — is
// written to test/fuzz/findings/<target>/ and makes the exit code 1. Fix it, then move the file to
// test/fuzz/corpus/<target>/, where the regression test (test/fuzz/regression.test.ts) runs it
// with the seeds on every `npm test`.
import { fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TARGETS } from '../test/fuzz/targets.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const argv = process.argv.slice(2)
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
}
const seconds = Number(opt('--seconds', '60'))
const jobs = Math.max(1, Number(opt('--jobs', '2')))
const seed = Number(opt('--seed', String(Date.now() % 1e9)))
const only = opt('--target', '')
const targets = only ? TARGETS.filter((t) => t.name === only) : TARGETS
if (targets.length === 0 || !(seconds > 0)) {
  console.error(`usage: npm run fuzz -- [--seconds N>0] [--target ${TARGETS.map((t) => t.name).join('|')}] [--jobs J] [--seed S]`)
  process.exit(2)
}
const HANG_MS = 10_000
const scratch = mkdtempSync(join(tmpdir(), 'weft-fuzz-'))

interface Summary { target: string; execs: number; corpus: number; functions: number; blocksLeft: number; findings: number; restarts: number }

function record(target: string, kind: string, input: string, message: string): void {
  const dir = join(ROOT, 'test/fuzz/findings', target)
  mkdirSync(dir, { recursive: true })
  const name = `${kind}-${createHash('sha1').update(input).digest('hex').slice(0, 12)}`
  writeFileSync(join(dir, `${name}.txt`), input)
  writeFileSync(join(dir, `${name}.why`), `${message}\n`)
  console.log(`  FINDING ${target} ${kind}: test/fuzz/findings/${target}/${name}.txt — ${message.split('\n')[0]}`)
}

/** Runs one target for `seconds`, restarting its process after a hang (at most 3 times). */
async function fuzz(target: string): Promise<Summary> {
  const s: Summary = { target, execs: 0, corpus: 0, functions: 0, blocksLeft: 0, findings: 0, restarts: 0 }
  const end = Date.now() + seconds * 1000
  while (Date.now() < end - 1000 && s.restarts <= 3) {
    const batchFile = join(scratch, `${target}-batch.json`)
    const left = Math.ceil((end - Date.now()) / 1000)
    const child = fork(join(ROOT, 'test/fuzz/worker.ts'), ['--target', target, '--seconds', String(left), '--seed', String(seed + s.restarts), '--batch-file', batchFile, '--corpus', join(ROOT, 'test/fuzz/corpus', target)], { execArgv: ['--import', 'tsx', '--no-warnings'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let current = 0
    const hung = await new Promise<boolean>((resolve) => {
      let last = Date.now()
      const watch = setInterval(() => {
        if (Date.now() - last < HANG_MS) return
        clearInterval(watch)
        child.kill('SIGKILL')
        resolve(true)
      }, 500)
      child.on('message', (m: { progress?: Omit<Summary, 'target'>; done?: Omit<Summary, 'target'>; finding?: { kind: string; input: string; message: string } }) => {
        last = Date.now()
        const p = m.progress ?? m.done
        if (p) {
          current = p.execs
          s.corpus = p.corpus
          s.functions = p.functions
          s.blocksLeft = p.blocksLeft
        }
        if (m.finding) {
          s.findings++
          record(target, m.finding.kind, m.finding.input, m.finding.message)
        }
      })
      child.on('exit', (code) => {
        clearInterval(watch)
        if (code !== 0 && code !== null) {
          s.findings++
          record(target, 'exit', '', `the fuzz process exited with code ${code}`)
        }
        resolve(false)
      })
    })
    s.execs += current
    if (!hung) break
    s.restarts++
    const batch = JSON.parse(readFileSync(batchFile, 'utf8')) as string[]
    s.findings++
    record(target, 'hang', batch.join('\n\u0000\n'), `one of these ${batch.length} inputs (separated by a NUL line) ran for over ${HANG_MS / 1000} s`)
  }
  return s
}

const started = Date.now()
console.log(`fuzz: ${targets.map((t) => t.name).join(', ')} for ${seconds} s each, ${jobs} at a time, seed ${seed}`)
const queue = [...targets.map((t) => t.name)]
const results: Summary[] = []
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
  for (let t = queue.shift(); t !== undefined; t = queue.shift()) results.push(await fuzz(t))
}))
rmSync(scratch, { recursive: true, force: true })
console.log('\n| target | execs | execs/s | corpus | src functions run | their blocks not run | findings |')
console.log('| --- | --- | --- | --- | --- | --- | --- |')
for (const r of results.sort((a, b) => a.target.localeCompare(b.target))) {
  console.log(`| ${r.target} | ${r.execs} | ${Math.round(r.execs / seconds)} | ${r.corpus} | ${r.functions} | ${r.blocksLeft} | ${r.findings} |`)
}
const findings = results.reduce((n, r) => n + r.findings, 0)
console.log(`\nfuzz: ${findings} finding(s) in ${Math.round((Date.now() - started) / 1000)} s`)
process.exit(findings > 0 ? 1 : 0)

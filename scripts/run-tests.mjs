// Runs the whole suite: a type check, then every test/**/*.test.ts with node:test (through tsx),
// printing node:test's summary lines. Arguments filter test files by substring.
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { availableParallelism } from 'node:os'

function find(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...find(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out.sort()
}

const filters = process.argv.slice(2)
const files = find('test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}

if (filters.length === 0) {
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit'], { stdio: 'inherit' })
  if (tsc.status !== 0) {
    console.error('type check failed')
    process.exit(tsc.status ?? 1)
  }
}

// The package tests import the built dist/, and the CLI tests run dist/cli.js when it is current
// (test/cli/kit.ts): build it from the current src first.
if (files.some((f) => ['package', 'cli', 'daemon'].some((d) => f.includes(join('test', d))))) {
  const build = spawnSync(process.execPath, ['node_modules/tsup/dist/cli-default.js', '--silent'], { stdio: 'inherit' })
  if (build.status !== 0) {
    console.error('build failed')
    process.exit(build.status ?? 1)
  }
}

// Two test files at a time at least: node:test's default (cores − 1) is one on a 2-core machine,
// where the suite took 526–579 s of the 10 minutes it may take (2026-12-07), a third of it starting
// processes (tsx and the mesh's imports, ~1.1 s a file). Two at a time: 337 s, twice, 0 failures.
// Files marked `// test: serial` in their first lines (a lease of a few hundred ms, an instance made
// busy on purpose, a share of traffic measured) run afterwards, one at a time: beside another file
// on 2 cores their timing had no slack left (one run with extra load failed two of them).
// WEFT_TEST_CONCURRENCY=1 runs everything one by one (to rule out interference when chasing a failure).
const concurrency = Number(process.env.WEFT_TEST_CONCURRENCY) || Math.max(2, availableParallelism() - 1)
const isSerial = (f) => /^\/\/ test: serial\b/m.test(readFileSync(f, 'utf8').split('\n', 40).join('\n'))
const serial = concurrency > 1 ? files.filter(isSerial) : []
const parallel = files.filter((f) => !serial.includes(f))
const phase = (list, n) => (list.length === 0 ? 0 : spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=120000', `--test-concurrency=${n}`, ...list], { stdio: 'inherit' }).status ?? 1)
const first = phase(parallel, concurrency)
if (serial.length > 0) console.log(`\n${serial.length} test file(s) marked "test: serial" now, one at a time (${parallel.length} ran ${concurrency} at a time above)\n`)
const second = phase(serial, 1)
process.exit(first || second)

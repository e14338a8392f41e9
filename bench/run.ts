// The benchmark runner (`npm run bench [-- --quick]`): runs every bench/*.ts scenario in its own process and writes
// bench/RESULTS.md and the latency chart bench/latency.svg (a quick run: both under bench/.out/, so CI never touches them).
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { basename, join } from 'node:path'
import { latencyChartSvg } from './lib/chart.js'
import { compareProfiles, type ProfiledRun } from './lib/profile.js'
import { BUDGET_S, report, type Timing } from './lib/report.js'
import { ONLY_MS, type ScenarioResult } from './lib/scenario.js'

const quick = process.argv.includes('--quick')
const dir = fileURLToPath(new URL('.', import.meta.url))
const out = join(dir, '.out')
mkdirSync(out, { recursive: true })
// Every bench/*.ts but this runner is a scenario (bench/lib/scenario.ts); tools that are not (bench/instr/main.ts,
// the valgrind instruction count) live in subfolders so they are never run here under a scenario's time limit.
const scenarios = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'run.ts').sort()

/** Runs `node [nodeArgs] --import tsx bench/<file> [args]`, inheriting stdio; kills it after `limitMs`. */
function node(nodeArgs: string[], file: string, args: string[], limitMs: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs, '--expose-gc', '--import', 'tsx', join(dir, file), ...args], { stdio: 'inherit' })
    const timer = setTimeout(() => {
      console.error(`bench: ${file} overran ${limitMs / 1000} s; killing it`)
      child.kill('SIGKILL')
    }, limitMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve(code ?? (signal ? 1 : 0))
    })
  })
}

/** Busy-loops for `ms` and counts gaps > 0.5 ms: time this process was not scheduled (other tenants, the VM host). */
function stalls(ms: number): string {
  const end = performance.now() + ms
  let last = performance.now()
  let n = 0
  let lost = 0
  let max = 0
  for (let t = last; t < end; last = t) {
    t = performance.now()
    if (t - last > 0.5) {
      n++
      lost += t - last
      max = Math.max(max, t - last)
    }
  }
  return `${n} stalls > 0.5 ms in ${ms / 1000} s (${((100 * lost) / ms).toFixed(1)} % of the time, longest ${max.toFixed(1)} ms)`
}

/**
 * Times the first touch of 64 MiB of fresh memory: one page fault per 4 KiB page. On a bare machine
 * that is ~0.1–0.3 µs a page; on this VM it was 11 µs some evenings (2026-12-07), which makes every
 * fresh page a process maps (V8 heap pages after a GC, malloc growth) cost ~40× more and moved CPU
 * per request by 2–3× between runs. The figure says which kind of evening a run had.
 */
function pageFaultCost(): string {
  const bytes = 64 << 20
  const f0 = process.resourceUsage().minorPageFault
  const t0 = performance.now()
  Buffer.allocUnsafeSlow(bytes).fill(1)
  const ms = performance.now() - t0
  const faults = process.resourceUsage().minorPageFault - f0
  return `first touch of 64 MiB: ${ms.toFixed(0)} ms, ${faults} page faults (${((1000 * ms) / Math.max(1, faults)).toFixed(2)} µs each)`
}

const started = new Date()
const noiseBefore = `${stalls(quick ? 200 : 2_000)}; ${pageFaultCost()}`
const results: (ScenarioResult & { file: string })[] = []
const timings = new Map<string, Timing>()
let failed = 0
for (const file of scenarios) {
  const json = join(out, `${file}.json`)
  rmSync(json, { force: true })
  console.error(`bench: ${file}${quick ? ' (quick)' : ''}`)
  const t0 = performance.now()
  const code = await node([], file, ['--json', json, ...(quick ? ['--quick'] : [])], quick ? 60_000 : 180_000)
  timings.set(file, { file, runS: (performance.now() - t0) / 1000, profileS: 0, ok: code === 0 })
  if (code !== 0) {
    failed++
    console.error(`bench: ${file} failed (exit ${code})`)
    continue
  }
  results.push({ ...(JSON.parse(readFileSync(json, 'utf8')) as ScenarioResult), file })
}

type Profiled = ProfiledRun & { note: string }

/** Runs one arm of a scenario alone, profiling its measured phase; returns the profile file and request count. */
async function profileArm(file: string, arm: string): Promise<Profiled | string> {
  const prof = join(out, `${file}.${arm}.cpuprofile`)
  const json = join(out, `${file}.${arm}.json`)
  rmSync(prof, { force: true })
  const code = await node([], file, ['--only', arm, '--profile', prof, '--json', json], 60_000)
  if (code !== 0 || !existsSync(prof)) return `profiling ${file} --only ${arm} failed (exit ${code})`
  const only = JSON.parse(readFileSync(json, 'utf8')) as ScenarioResult
  return { label: arm, file: prof, requests: only.requests ?? 0, note: only.markdown.trim() }
}

/** When a goal is missed: profile the baseline and the Weft arm and show where the extra time goes. */
async function profile(file: string, arms: { base: string; weft: string }): Promise<string> {
  const base = await profileArm(file, arms.base)
  const weft = await profileArm(file, arms.weft)
  if (typeof base === 'string' || typeof weft === 'string') return `_${[base, weft].filter((x) => typeof x === 'string').join('; ')}_`
  const cmd = (arm: string) => `\`node --import tsx bench/${file} --only ${arm} --profile FILE\``
  return [
    `### ${file}: ${arms.base} vs ${arms.weft}`,
    ``,
    `Commands: ${cmd(arms.base)} and ${cmd(arms.weft)}, each a closed loop alone in a fresh process; the V8 sampling profiler (what --cpu-prof uses, 250 µs) covers only the ${ONLY_MS / 1000} s measured phase, after start-up and warm-up`,
    `(${base.note}; ${weft.note}; the profiler slows both).`,
    ``,
    compareProfiles(base, weft),
  ].join('\n')
}

// Profiles are diagnosis, the budget is a promise: a profile that may not fit in what is left of it
// (the longest one so far, 20 s before any, plus the closing noise probe and report) is skipped and
// the report says so. With six goals missed the profiles alone took ~90 s of a 597 s run.
const CLOSING_S = 8
const profiles: string[] = []
if (!quick) {
  let longestS = 20
  for (const r of results) {
    if (!r.profileArms || r.goals.every((g) => g.met)) continue
    const usedS = performance.now() / 1000
    if (usedS + longestS + CLOSING_S > BUDGET_S.full) {
      profiles.push(`### ${r.file}: profile skipped\n\n_A goal was missed, but its profile (~${Math.round(longestS)} s) would not fit in the ${BUDGET_S.full} s budget after ${Math.round(usedS)} s; run \`node --import tsx bench/${r.file} --only ARM --profile FILE\` for it._`)
      continue
    }
    const t0 = performance.now()
    profiles.push(await profile(r.file, r.profileArms))
    const tookS = (performance.now() - t0) / 1000
    timings.get(r.file)!.profileS = tookS
    longestS = Math.max(longestS, tookS)
  }
}

const noiseAfter = `${stalls(quick ? 200 : 2_000)}; ${pageFaultCost()}`
// A quick run writes next to RESULTS.quick.md, so the report's relative image link holds in both places.
const chartFile = quick ? join(out, 'latency.quick.svg') : join(dir, 'latency.svg')
writeFileSync(chartFile, latencyChartSvg(results.flatMap((r) => (r.chart ? [r.chart] : []))))
// performance.now() counts from this process's start: the whole run but the tsup build npm runs before it.
const totalS = performance.now() / 1000
const budget = quick ? BUDGET_S.quick : BUDGET_S.full
const doc = report({
  quick,
  started,
  noise: { before: noiseBefore, after: noiseAfter },
  results,
  profiles,
  chart: basename(chartFile),
  timings: [...timings.values()],
  totalS,
})

const target = quick ? join(out, 'RESULTS.quick.md') : join(dir, 'RESULTS.md')
writeFileSync(target, doc)
console.error(`bench: wrote ${target} and ${chartFile}; total ${Math.round(totalS)} s (budget ${budget} s)`)
if (totalS > budget) console.error(`bench: the run took longer than its ${budget} s budget`)
process.exit(failed ? 1 : 0)

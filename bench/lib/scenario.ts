// What a scenario file returns and the wrapper that runs one: flags, time limit, JSON hand-off to run.ts.
import { writeFileSync } from 'node:fs'
import { serveArm, type ArmClient } from './arm.js'

export interface ScenarioOptions {
  /** A short run (CI): few seconds, figures not meaningful. */
  quick: boolean
  /** Run only this arm, as one closed loop (for profiling). */
  only: string | undefined
  /** With --only: write a V8 CPU profile of the measured phase (not start-up or warm-up) to this file. */
  profile: string | undefined
}

export interface Goal {
  text: string
  met: boolean
}

export interface ScenarioResult {
  title: string
  /** The scenario's section of RESULTS.md (from "###" down). */
  markdown: string
  goals: Goal[]
  /** Requests sent in the whole process (an --only run reports it for per-request profile figures). */
  requests?: number
  /** The arms run.ts profiles with --cpu-prof (each in its own process) when a goal is missed. */
  profileArms?: { base: string; weft: string }
  /** Latency percentiles for run.ts's chart (bench/latency.svg): one series per arm, in µs. */
  chart?: LatencyChart
}

/** One group of the latency chart: a load shape and the arms measured under it. */
export interface LatencyChart {
  /** e.g. "HTTP client, open loop 2,000 req/s". */
  title: string
  series: { label: string; p50: number; p90: number; p99: number; p999: number }[]
}

/**
 * How long an --only run measures (the profiled phase): 4 s gives ~16,000 samples at 250 µs. It was
 * 6 s until the overhead scenario (L8) took the whole bench to 592 s of its 600 s budget with six
 * scenarios' goals missed, each then profiled twice (2026-12-07).
 */
export const ONLY_MS = 4_000

export function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i < 0 ? undefined : process.argv[i + 1]
}

export interface ScenarioDef {
  /** The scenario's main process: starts what it needs, drives the arms, returns the figures. */
  run(o: ScenarioOptions): Promise<ScenarioResult>
  /** In an arm's own process (the file run with --arm NAME): builds that arm's client. */
  arm(name: string): Promise<ArmClient>
}

/**
 * The entry point of a scenario file. With --arm NAME it serves that arm to the main process
 * (lib/arm.ts); otherwise it runs the scenario with the flags (--quick, --only ARM, --profile FILE,
 * --json FILE), prints its markdown, writes the result as JSON for run.ts when asked, and exits:
 * 0 when it ran, 1 when it threw or overran `limitMs`.
 */
export function scenario(def: ScenarioDef, limitMs: number): void {
  const arm = flag('--arm')
  if (arm) {
    def.arm(arm).then(
      (client) => serveArm(client),
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
    return
  }
  const opts: ScenarioOptions = { quick: process.argv.includes('--quick'), only: flag('--only'), profile: flag('--profile') }
  const json = flag('--json')
  const limit = setTimeout(() => {
    console.error(`scenario overran its ${limitMs / 1000} s limit`)
    process.exit(1)
  }, opts.quick ? 60_000 : limitMs)
  limit.unref()
  def.run(opts).then(
    (res) => {
      console.log(res.markdown)
      if (json) writeFileSync(json, JSON.stringify(res))
      process.exit(0)
    },
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    },
  )
}

/** A markdown table from a header row and body rows. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ratio: (n: number) => `${n.toFixed(3)}×`,
  us: (n: number) => `${Math.round(n).toLocaleString('en-US')} µs`,
}

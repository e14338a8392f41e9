// One fuzz target, coverage-guided, in a process of its own (scripts/fuzz.ts forks it). V8's own
// block coverage (inspector Profiler.takePreciseCoverage, counters reset on each take) is the
// guide: an input that runs a block of src/ that no earlier input ran joins the corpus, and new
// inputs are mutations of corpus entries. Inputs run in batches (one coverage take per batch, a
// few ms); a batch that covered something new is run again one input at a time to find which.
// Reports to the parent: progress each second, every finding (a crash, a broken property, an
// input slower than 1 s), and a summary at the end. Before each batch its inputs are written to a
// file, so the parent can name them if the batch hangs.
import { Session } from 'node:inspector'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Mutator, tokensOf } from './mutate.js'
import { targetNamed } from './targets.js'

interface Range { startOffset: number; endOffset: number; count: number }
interface FunctionCoverage { functionName: string; ranges: Range[] }
interface ScriptCoverage { url: string; functions: FunctionCoverage[] }

const arg = (name: string) => process.argv[process.argv.indexOf(name) + 1]
const target = targetNamed(arg('--target')!)
const seconds = Number(arg('--seconds') ?? 10)
const seed = Number(arg('--seed') ?? 1)
const batchFile = arg('--batch-file')!
const corpusDir = arg('--corpus')!
const SLOW_MS = 1_000
const BATCH = 64

const session = new Session()
session.connect()
const post = <T>(method: string, params: object = {}) => new Promise<T>((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r as T))))

const SRC = new URL('../../src/', import.meta.url).href

/**
 * Per function of src/ ever run: the blocks no input has run yet (V8 lists a block apart from its
 * function when its count differs, so a block never run shows as a range of count 0).
 */
const notYet = new Map<string, Set<string>>()

/** Whether `coverage` runs something no input ran before; with `keep`, records it. */
function covers(result: ScriptCoverage[], keep: boolean): boolean {
  let fresh = false
  for (const script of result) {
    if (!script.url.startsWith(SRC)) continue
    for (const fn of script.functions) {
      const whole = fn.ranges[0]
      if (!whole || whole.count === 0) continue
      const key = `${script.url}#${whole.startOffset}`
      const zero = new Set(fn.ranges.filter((r) => r.count === 0).map((r) => `${r.startOffset}-${r.endOffset}`))
      const before = notYet.get(key)
      if (!before) {
        fresh = true
        if (keep) notYet.set(key, zero)
        continue
      }
      for (const r of before) {
        if (zero.has(r)) continue
        fresh = true
        if (keep) before.delete(r)
      }
    }
  }
  return fresh
}

const blocksLeft = () => [...notYet.values()].reduce((n, s) => n + s.size, 0)
const take = async () => (await post<{ result: ScriptCoverage[] }>('Profiler.takePreciseCoverage')).result

let execs = 0
const send = (m: object) => process.send!(m)

/** Runs one input; a throw or a slow run is a finding. */
function runOne(input: string): void {
  const t0 = performance.now()
  try {
    target.run(input)
  } catch (err) {
    const e = err as Error
    send({ finding: { kind: e?.constructor?.name === 'PropertyViolation' ? 'property' : 'crash', input, message: String(e?.stack ?? e) } })
  }
  const ms = performance.now() - t0
  if (ms > SLOW_MS) send({ finding: { kind: 'slow', input, message: `took ${Math.round(ms)} ms (limit ${SLOW_MS} ms)` } })
  execs++
}

process.on('unhandledRejection', (err) => send({ finding: { kind: 'unhandled-rejection', input: '', message: String((err as Error)?.stack ?? err) } }))

const seeds = readdirSync(corpusDir).sort().map((f) => readFileSync(join(corpusDir, f), 'utf8'))
if (seeds.length === 0) throw new Error(`no seeds in ${corpusDir}`)
const mutator = new Mutator(seed, [...target.dictionary, ...tokensOf(seeds)], target.maxLength)
const corpus: string[] = []

await post('Profiler.enable')
await post('Profiler.startPreciseCoverage', { callCount: true, detailed: true })
await take()
for (const s of seeds) {
  runOne(s)
  if (covers(await take(), true) || corpus.length === 0) corpus.push(s)
}

const deadline = Date.now() + seconds * 1000
let lastReport = 0
while (Date.now() < deadline) {
  const batch: string[] = []
  for (let i = 0; i < BATCH; i++) batch.push(mutator.mutate(corpus[mutator.random() * corpus.length | 0]!, corpus[mutator.random() * corpus.length | 0]!))
  writeFileSync(batchFile, JSON.stringify(batch))
  for (const input of batch) runOne(input)
  if (covers(await take(), false)) {
    for (const input of batch) {
      runOne(input)
      if (covers(await take(), true)) corpus.push(input)
    }
  }
  if (Date.now() - lastReport >= 1_000) {
    lastReport = Date.now()
    send({ progress: { execs, corpus: corpus.length, functions: notYet.size, blocksLeft: blocksLeft() } })
  }
}
send({ done: { execs, corpus: corpus.length, functions: notYet.size, blocksLeft: blocksLeft() } })
session.disconnect()
process.disconnect()

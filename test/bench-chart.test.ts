// bench/lib/chart.ts draws bench/latency.svg, which only a full bench run regenerates: these checks catch a broken
// chart (invalid XML, NaN coordinates from the log scale) before it is committed.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { armKind, formatLatency, latencyChartSvg, logTicks } from '../bench/lib/chart.js'
import type { LatencyChart } from '../bench/lib/scenario.js'

const httpClient: LatencyChart = {
  title: 'HTTP client, open loop 2,000 req/s',
  series: [
    { label: 'raw undici `Pool.request`', p50: 66, p90: 101, p99: 1_339, p999: 10_335 },
    { label: 'hand-written undici + cockatiel + prom-client', p50: 70, p90: 120, p99: 1_500, p999: 11_000 },
    { label: 'Weft mesh.request', p50: 86, p90: 154, p99: 3_285, p999: 9_567 },
  ],
}
const sidecar: LatencyChart = {
  title: 'Sidecar, end to end',
  series: [
    { label: 'raw', p50: 70, p90: 110, p99: 900, p999: 4_000 },
    { label: 'nginx sidecar pair (mTLS)', p50: 310, p90: 480, p99: 2_900, p999: 9_000 },
    { label: 'Weft', p50: 120, p90: 190, p99: 1_700, p999: 5_000 },
  ],
}

/** Tags open and closed in order: enough to tell a truncated or mangled document apart. */
function assertBalanced(svg: string): void {
  const stack: string[] = []
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, close, name, self] = m
    if (self) continue
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the innermost open tag`)
    else stack.push(name!)
  }
  assert.deepEqual(stack, [], 'every tag is closed')
}

function assertValidLooking(svg: string): void {
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 \d+ \d+"/)
  assert.match(svg.trimEnd(), /<\/svg>$/)
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/)
  // Every & starts an entity, and no text holds a raw < (it would open a bogus tag).
  assert.doesNotMatch(svg, /&(?!(amp|lt|gt|quot|apos);)/)
  assertBalanced(svg)
}

test('one group: a standalone SVG with the title, a line per arm and a legend entry per arm', () => {
  const svg = latencyChartSvg([httpClient])
  assertValidLooking(svg)
  assert.match(svg, /HTTP client, open loop 2,000 req\/s/)
  assert.ok(svg.includes('>raw undici Pool.request<'), 'markdown code marks are dropped')
  assert.equal(svg.match(/<g class="series"/g)?.length, 3)
  for (const kind of ['raw', 'hand', 'weft']) assert.match(svg, new RegExp(`data-kind="${kind}"`))
  for (const label of ['p50', 'p90', 'p99', 'p99.9', 'percentile', 'latency (log scale)']) assert.ok(svg.includes(`>${label}<`), label)
})

test('two groups: two panels side by side, each arm kind in its own colour in both', () => {
  const svg = latencyChartSvg([httpClient, sidecar])
  assertValidLooking(svg)
  assert.equal(svg.match(/<g transform="translate/g)?.length, 2)
  assert.equal(svg.match(/<g class="series"/g)?.length, 6)
  const colours = (kind: string) => new Set([...svg.matchAll(new RegExp(`data-kind="${kind}">.*?\\n<path d="[^"]*" fill="none" stroke="(#[0-9A-F]+)"`, 'g'))].map((m) => m[1]))
  assert.equal(colours('weft').size, 1, 'Weft has one colour across panels')
  assert.notDeepEqual(colours('weft'), colours('raw'))
  assert.notDeepEqual(colours('weft'), colours('sidecar'))
})

test('labels and titles are XML-escaped', () => {
  const svg = latencyChartSvg([{ title: 'a <b> & "c"', series: [{ label: `Weft <script>'x'</script> & co`, p50: 1, p90: 2, p99: 3, p999: 4 }] }])
  assertValidLooking(svg)
  assert.ok(svg.includes('a &lt;b&gt; &amp; &quot;c&quot;'))
  assert.ok(svg.includes('Weft &lt;script&gt;&apos;x&apos;&lt;/script&gt; &amp; co'))
  assert.ok(!svg.includes('<script>'))
})

test('a zero, missing or NaN percentile breaks the line instead of producing NaN', () => {
  const holes = {
    title: 'holes',
    series: [
      { label: 'raw', p50: 0, p90: 100, p99: 1_000, p999: 2_000 },
      // As it arrives from JSON: NaN was written as null, an absent key is undefined.
      { label: 'Weft', p50: 50, p90: null, p99: Number.NaN, p999: undefined },
    ],
  } as unknown as LatencyChart
  const svg = latencyChartSvg([holes])
  assertValidLooking(svg)
  const paths = [...svg.matchAll(/<path d="(M[^"]*)" fill="none"/g)].map((m) => m[1]!)
  assert.equal(paths.length, 1, 'the raw arm keeps its line; the Weft arm has one point, so no line')
  assert.equal(paths[0]!.match(/M/g)?.length, 1, 'three points in a row, one segment')
  assert.match(svg, />n\/a · 1 ms</)

  const empty = latencyChartSvg([{ title: 'nothing', series: [{ label: 'raw', p50: 0, p90: 0, p99: 0, p999: 0 }] }])
  assertValidLooking(empty)
  assert.match(empty, />no data</)
  assertValidLooking(latencyChartSvg([]))
})

test('y ticks are increasing, cover the data, and sit higher on the page for larger values', () => {
  for (const [lo, hi] of [[66, 10_335], [2, 7_835], [100, 100], [0.4, 3], [950, 1_050], [1, 1e7]] as const) {
    const ticks = logTicks(lo, hi)
    assert.ok(ticks.length >= 3, `${lo}..${hi}: ${ticks.length} ticks`)
    assert.ok(ticks.length <= 12, `${lo}..${hi}: ${ticks.length} ticks`)
    for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i]! > ticks[i - 1]!, `${lo}..${hi}: ${ticks.join(',')}`)
    assert.ok(ticks[0]! <= lo && ticks[ticks.length - 1]! >= hi, `${lo}..${hi} within ${ticks.join(',')}`)
  }
  const svg = latencyChartSvg([httpClient])
  const ys = [...svg.matchAll(/<g class="y-tick" data-value="([\d.e+-]+)"><line [^>]*y1="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])] as const)
  assert.ok(ys.length >= 3)
  for (let i = 1; i < ys.length; i++) {
    assert.ok(ys[i]![0] > ys[i - 1]![0], 'values increase')
    assert.ok(ys[i]![1] < ys[i - 1]![1], 'larger values are drawn higher')
  }
})

test('tick labels read as µs, ms or s; arm kinds come from the labels', () => {
  assert.deepEqual([2, 66, 500, 999.6, 1_000, 1_339, 20_000, 2_500_000].map(formatLatency), ['2 µs', '66 µs', '500 µs', '1 ms', '1 ms', '1.34 ms', '20 ms', '2.5 s'])
  assert.equal(formatLatency(0), 'n/a')
  assert.deepEqual(
    ['raw undici Pool.request', 'hand-written undici+cockatiel+prom-client', 'nginx sidecar pair (mTLS)', 'Weft mesh.request', 'raw (no proxy)'].map(armKind),
    ['raw', 'hand', 'sidecar', 'weft', 'raw'],
  )
})

// Bytes allocated on the V8 heap and minor page faults while a loop runs: figures that, unlike CPU
// time, hardly move with what else the machine does, so they show a change to the hot path's
// allocation even on a VM whose CPU figures swing by 2x between runs (2026-12-07 evening).
import v8 from 'node:v8'

export interface AllocFigures {
  /** Bytes allocated on the JS heap (young and old) during the loop. */
  allocBytes: number
  /** Minor page faults of the process during the loop (first touches of memory). */
  pageFaults: number
}

/**
 * Starts measuring; the returned function stops and answers. V8 keeps no running total of bytes
 * allocated, so this adds up, over the GCs in between (V8's GCProfiler), the heap's growth before
 * each GC since the last one ended, plus the growth since the last GC.
 */
export function startAllocMeter(): () => AllocFigures {
  const profiler = new v8.GCProfiler()
  const used0 = v8.getHeapStatistics().used_heap_size
  const faults0 = process.resourceUsage().minorPageFault
  profiler.start()
  return () => {
    const used1 = v8.getHeapStatistics().used_heap_size
    const faults = process.resourceUsage().minorPageFault - faults0
    const stats = profiler.stop()?.statistics ?? []
    let bytes = 0
    let before = used0
    for (const gc of stats) {
      bytes += gc.beforeGC.heapStatistics.usedHeapSize - before
      before = gc.afterGC.heapStatistics.usedHeapSize
    }
    bytes += used1 - before
    return { allocBytes: Math.max(0, bytes), pageFaults: faults }
  }
}

/** Median of the rounds' allocation per request, as table cells: KB allocated, page faults per 1,000. */
export function allocCells(rounds: (AllocFigures & { requests: number })[]): [string, string] {
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  }
  const kb = med(rounds.map((r) => r.allocBytes / r.requests / 1024))
  const faults = med(rounds.map((r) => (1000 * r.pageFaults) / r.requests))
  return [kb.toFixed(2), faults.toFixed(1)]
}

/** The sentence every table with allocCells columns carries. */
export const ALLOC_NOTE =
  'KB allocated per request: bytes allocated on the client process\'s JS heap during the round (V8\'s GCProfiler: growth before each GC plus growth since the last), which, unlike CPU time, hardly moves with the machine\'s noise, so a change to the hot path shows in it run to run; page faults: minor faults of the client process per 1,000 requests (first touches of fresh memory; on this VM each costs ~10 µs, see the machine line at the top).'

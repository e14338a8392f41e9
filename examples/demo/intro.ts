// The lines printed before the traffic starts: who is where, and what the run will do.
import { CANARY, OUTLIER } from './config.js'
import type { Instance } from './fleet.js'
import { BUSY } from './instances.js'

export interface IntroInput {
  checkout: string
  instances: readonly Instance[]
  busyWindow: readonly [number, number]
  concurrency: number
  deadlineMs: number
  seconds: number
}

export function intro({ checkout, instances, busyWindow, concurrency, deadlineMs, seconds }: IntroInput): string {
  const lines = [
    'Weft demo: client → checkout → payments, every hop through an in-process mesh',
    '',
    `  checkout      ${checkout.replace('http://', '').padEnd(16)} Express 5, app.use(weft(mesh)); POST /checkout/:cart calls mesh.fetch('http://payments/charge')`,
  ]
  for (const i of instances) {
    const notes = [
      i.failRate ? `fails ${i.failRate * 100}% with 503` : '',
      i.cpuBusy ? `CPU-busy ${BUSY.blockMs}ms of every ${BUSY.everyMs}ms from ${busyWindow[0].toFixed(1)}s to ${busyWindow[1].toFixed(1)}s` : '',
    ].filter(Boolean)
    lines.push(`  payments ${i.name.padEnd(4)} ${i.address.padEnd(16)} Fastify 5 + weftPlugin, pid ${i.pid}, version=${i.version} zone=${i.zone}${notes.length ? `  (${notes.join('; ')})` : ''}`)
  }
  lines.push(
    '',
    `  route payments-canary: v1 ${CANARY.v1} / v2 ${CANARY.v2}; P2C peak-EWMA balancing weighs the weft-load each instance reports;`,
    `  retries, budget and breaker at their defaults; ${OUTLIER.consecutive5xx} consecutive 5xx eject an endpoint for ${OUTLIER.baseEjectionTime} (up to ${OUTLIER.maxEjectionTime})`,
    `  a plain HTTP client sends ${concurrency} concurrent POST /checkout/:cart for ${seconds}s, each with weft-deadline-ms: ${deadlineMs}`,
    '',
  )
  return lines.join('\n')
}

// The lines printed before the traffic starts: who is where, and what the run will do.
import { CANARY, OUTLIER } from './config.js'
import type { Instance } from './fleet.js'
import { BUSY } from './instances.js'
import type { LedgerInstance } from './ledger.js'

export interface IntroInput {
  checkout: string
  daemon: string
  /** When the canary route is applied (seconds into the run). */
  canaryAt: number
  instances: readonly Instance[]
  ledgers: readonly LedgerInstance[]
  busyWindow: readonly [number, number]
  concurrency: number
  deadlineMs: number
  seconds: number
}

export function intro({ checkout, daemon, instances, ledgers, busyWindow, canaryAt, concurrency, deadlineMs, seconds }: IntroInput): string {
  const lines = [
    'Weft demo: client → checkout → payments → ledger (gRPC), every hop through an in-process mesh',
    '',
    `  weft daemon   ${daemon.replace('http://', '').padEnd(16)} control daemon, embedded store: holds the policy, every instance below registered with it and watches it`,
    `  checkout      ${checkout.replace('http://', '').padEnd(16)} Express 5, app.use(weft(mesh)); POST /checkout/:cart calls mesh.fetch('http://payments/charge')`,
  ]
  for (const i of instances) {
    const notes = [
      i.failRate ? `fails ${i.failRate * 100}% with 503` : '',
      i.cpuBusy ? `CPU-busy ${BUSY.blockMs}ms of every ${BUSY.everyMs}ms from ${busyWindow[0].toFixed(1)}s to ${busyWindow[1].toFixed(1)}s` : '',
    ].filter(Boolean)
    lines.push(`  payments ${i.name.padEnd(4)} ${i.address.padEnd(16)} Fastify 5 + weftPlugin, pid ${i.pid}, version=${i.version} zone=${i.zone}${notes.length ? `  (${notes.join('; ')})` : ''}`)
  }
  for (const l of ledgers) {
    lines.push(`  ${l.name.padEnd(13)} ${l.address.padEnd(16)} gRPC Ledger.Post on mesh.grpc.server(), its own "ledger" mesh, in the demo's process${l.failRate ? `  (fails ${l.failRate * 100}% with UNAVAILABLE)` : ''}`)
  }
  lines.push(
    '',
    `  route payments-canary: all to v1, then at ${canaryAt.toFixed(1)}s the demo applies v1 ${CANARY.v1} / v2 ${CANARY.v2} through the daemon (the split changes live);`,
    `  P2C peak-EWMA balancing weighs the weft-load each instance reports;`,
    `  retries, budget and breaker at their defaults; ${OUTLIER.consecutive5xx} consecutive 5xx eject an endpoint for ${OUTLIER.baseEjectionTime} (up to ${OUTLIER.maxEjectionTime})`,
    `  each payments /charge posts to the ledger with mesh.grpc.client(LedgerClient, 'ledger') before answering (503 if that fails);`,
    `  its mesh balances the ledger's instances (P2C peak-EWMA) and retries UNAVAILABLE on the other one`,
    '  identity: STRICT mTLS between the services with SPIFFE IDs from the daemon\'s CA (checkout\'s edge PERMISSIVE for the plain client);',
    '  AuthorizationPolicy: payments accepts only checkout, the ledger only payments; one denied call is shown at the end',
    `  a plain HTTP client sends ${concurrency} concurrent POST /checkout/:cart for ${seconds}s, each with weft-deadline-ms: ${deadlineMs}`,
    '',
  )
  return lines.join('\n')
}

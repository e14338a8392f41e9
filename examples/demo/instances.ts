// What the demo's payments instances are, where the ledger they post to is, and the IPC messages
// between the demo and each instance process (shared by fleet.ts, the parent side, and payments.ts,
// the child side).

export interface InstanceSpec {
  name: string
  version: string
  zone: string
  /** Share of requests (0..1) answered with 503 instead of served. */
  failRate: number
  /** Busy-loops the process's event loop while the demo is in its busy phase. */
  cpuBusy: boolean
}

export const PAYMENTS: readonly InstanceSpec[] = [
  { name: 'v1-a', version: 'v1', zone: 'zone-a', failRate: 0.2, cpuBusy: false },
  { name: 'v1-b', version: 'v1', zone: 'zone-b', failRate: 0, cpuBusy: true },
  { name: 'v2', version: 'v2', zone: 'zone-a', failRate: 0, cpuBusy: false },
]

/** A ledger instance (ledger.ts serves them). */
export interface LedgerEndpoint {
  name: string
  address: string
}

/** Where the control daemon is and the join token the instances register with. */
export interface ControlInfo {
  url: string
  token: string
}

/** The busy instance blocks its event loop for BUSY.blockMs out of every BUSY.everyMs. */
export const BUSY = { blockMs: 35, everyMs: 50 } as const

/** The run's phases: before the busy window, inside it, after it. */
export const PHASES = ['before', 'busy', 'after'] as const
export type Phase = 0 | 1 | 2
/** The busy window as fractions of the run: from 20 % to 80 % of it. */
export const BUSY_WINDOW = { from: 0.2, to: 0.8 } as const

/** What one instance answered during one phase, and the weft-load it reported meanwhile. */
export interface PhaseCounts {
  answered: number
  /** Answered with 503: failRate, or the ledger post failed. */
  failed: number
  /** Of those, 503s because the ledger post failed. */
  ledgerFailed: number
  /** Sum of the weft-load header values on those responses (mean = loadSum / answered). */
  loadSum: number
}

export type ToChild = { type: 'phase'; phase: Phase } | { type: 'stop' }
/** At stop: the counts per phase, and the lines of the instance's metrics about its ledger calls. */
export type FromChild = { type: 'ready'; port: number } | { type: 'stats'; phases: PhaseCounts[]; ledgerMetrics: string }

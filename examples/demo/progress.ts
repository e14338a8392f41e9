// The live progress line (rewritten in place on a TTY) and the event lines printed above it.
import type { OutboundStats } from './checkout.js'
import type { Instance } from './fleet.js'
import { int, pct, sum } from './format.js'
import type { Phase } from './instances.js'
import type { ClientStats } from './traffic.js'

/** One status line: rewritten in place on a TTY, one line per call otherwise; events print above it. */
export class Progress {
  private last = ''
  constructor(private readonly out: NodeJS.WriteStream = process.stdout, readonly tty = Boolean(process.stdout.isTTY)) {}

  update(line: string): void {
    // On a TTY the line must fit the terminal, or the next \r rewrites only its wrapped tail.
    this.last = this.tty && this.out.columns ? line.slice(0, this.out.columns - 1) : line
    if (this.tty) this.out.write(`\r\x1b[2K${this.last}`)
    else this.out.write(`${line}\n`)
  }

  /** A log line (an ejection, a phase change) printed without breaking the progress line. */
  event(line: string): void {
    if (this.tty) this.out.write(`\r\x1b[2K${line}\n${this.last}`)
    else this.out.write(`${line}\n`)
  }

  done(): void {
    if (this.tty && this.last) this.out.write('\n')
    this.last = ''
  }
}

/** Final responses by version, from checkout's per-instance counts. */
export function versionSplit(served: ReadonlyMap<string, number>, instances: readonly Instance[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const i of instances) out.set(i.version, (out.get(i.version) ?? 0) + (served.get(i.name) ?? 0))
  return out
}

export interface Live {
  retries: number
  ejections: number
  phase: Phase
  /** checkout's servedBy counts when the phase began, to show the busy instance's share since then. */
  servedAtPhaseStart: ReadonlyMap<string, number>
}

export function progressLine(client: ClientStats, out: OutboundStats, instances: readonly Instance[], durationMs: number, live: Live): string {
  const elapsed = Math.min(client.elapsedMs || performance.now() - client.startedAt, durationMs)
  const width = 20
  const filled = Math.round((elapsed / durationMs) * width)
  const split = versionSplit(out.servedBy, instances)
  const served = sum(split.values())
  const busy = instances.find((i) => i.cpuBusy)
  const since = (name: string): number => (out.servedBy.get(name) ?? 0) - (live.servedAtPhaseStart.get(name) ?? 0)
  const busyShare = busy ? `${busy.name} ${live.phase === 1 ? 'BUSY' : 'idle'} ${pct(since(busy.name), sum(instances.filter((i) => i.version === busy.version).map((i) => since(i.name))))} of ${busy.version}` : ''
  return [
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(elapsed / 1000).toFixed(1)}s`,
    `${int(client.requests)} req (${int(client.requests / Math.max(elapsed / 1000, 0.001))}/s)`,
    `ok ${pct(client.ok, client.requests, 2)}`,
    `v1 ${pct(split.get('v1') ?? 0, served)} / v2 ${pct(split.get('v2') ?? 0, served)}`,
    `retries ${int(live.retries)}`,
    `ejections ${int(live.ejections)}`,
    busyShare,
  ].join('  ')
}

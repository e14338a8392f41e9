// Calls from an instance that speaks a newer control protocol than this daemon (a rolling upgrade:
// instances first or daemons first, RELIABILITY S7). The fields of its bodies that this daemon
// does not know are ignored rather than refused (requests.ts), named back to the instance in a
// `weft-warning` header, and logged once per instance and set of fields, so the skew is visible.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CONTROL_PROTOCOL, PROTOCOL_HEADER, WARNING_HEADER } from '../control/protocol.js'
import type { Logger } from '../util/logger.js'

/** The caller's protocol level from its header; 0 when absent or unreadable (an older client, curl). */
export function protocolOf(req: IncomingMessage): number {
  const v = req.headers[PROTOCOL_HEADER]
  const n = Number(Array.isArray(v) ? v[0] : v)
  return Number.isSafeInteger(n) && n > 0 ? n : 0
}

/** A list to collect ignored fields in, when the caller is newer than this daemon; else undefined (unknown fields are refused). */
export function newerFields(req: IncomingMessage): string[] | undefined {
  return protocolOf(req) > CONTROL_PROTOCOL ? [] : undefined
}

/** Logged notes kept at most (instance × field set); beyond, the oldest are forgotten. */
const MAX_NOTED = 1000

export class SkewNotes {
  private readonly noted = new Set<string>()

  constructor(private readonly logger: Logger) {}

  /** Names the ignored fields in the answer (before it is written) and logs them once per `who`. */
  note(req: IncomingMessage, res: ServerResponse, who: string, ignored: string[] | undefined): void {
    if (!ignored || ignored.length === 0) return
    const fields = ignored.join(', ')
    res.setHeader(WARNING_HEADER, `ignored fields of a newer control protocol (${protocolOf(req)} > ${CONTROL_PROTOCOL}): ${fields}`)
    const key = `${who} ${fields}`
    if (this.noted.has(key)) return
    if (this.noted.size >= MAX_NOTED) this.noted.delete(this.noted.values().next().value!)
    this.noted.add(key)
    this.logger.warn(`${who} speaks control protocol ${protocolOf(req)}, newer than this daemon's ${CONTROL_PROTOCOL}: ignored ${fields}; upgrade the daemon to use them`)
  }
}

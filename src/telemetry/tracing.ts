// W3C trace context for outbound calls. With an OpenTelemetry SDK registered, the client span's
// context is injected; with none (the API's no-op), Weft still sends a valid traceparent so the
// next hop can join the trace. Ids come from a pooled random buffer: crypto.randomBytes per id
// costs ~8 µs, a slice of a 4 KiB pool refilled with randomFillSync costs well under 1 µs.
import { randomFillSync } from 'node:crypto'
import type { Span } from '@opentelemetry/api'

const INVALID_TRACE = '00000000000000000000000000000000'
const POOL = Buffer.alloc(4096)
// The pool as hex, converted once per refill: one native call per ~170 ids instead of one per id.
let HEX = ''
let offset = POOL.length * 2

function randomHex(bytes: number): string {
  const chars = bytes * 2
  if (offset + chars > HEX.length) {
    randomFillSync(POOL)
    HEX = POOL.toString('hex')
    offset = 0
  }
  const hex = HEX.slice(offset, offset + chars)
  offset += chars
  return hex
}

export function newTraceId(): string {
  const id = randomHex(16)
  return id === INVALID_TRACE ? newTraceId() : id
}

export function newSpanId(): string {
  const id = randomHex(8)
  return id === '0000000000000000' ? newSpanId() : id
}

/** traceparent for a span, or a fresh one (parented to `parentTraceId` when given). */
export function traceparentFor(span: Span | undefined, parentTraceId?: string, parentFlags = 1): string {
  const sc = span?.spanContext()
  if (sc && sc.traceId !== INVALID_TRACE) {
    return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`
  }
  if (parentTraceId) return `00-${parentTraceId}-${newSpanId()}-${(parentFlags & 1) === 1 ? '01' : '00'}`
  return freshTraceparent()
}

// Fresh root traceparents are made a batch at a time into one flat string, and each call returns
// a slice of it: one small object per call and no copy. Built per call from hex slices and a
// template, the header was a chain of five strings that undici's header check then flattened.
// The batch is the random block's hex (one native call), cut and joined: Array.join returns one
// flat string. A byte-by-byte formatting loop was as fast once optimized, but the refill runs
// once per 128 calls and V8 often left it unoptimized, where it cost ~300 µs instead of ~20 µs.
const TP_LEN = 55
const BATCH = 128
const RAND = Buffer.alloc(24 * BATCH)
const ZERO_TRACE = INVALID_TRACE
const ZERO_SPAN = '0000000000000000'
const PARTS: string[] = new Array<string>(BATCH)
let tpBatch = ''
let tpNext = BATCH

function refillTraceparents(): void {
  randomFillSync(RAND)
  const hex = RAND.toString('hex')
  for (let s = 0; s < BATCH; s++) {
    const h = s * 48
    // W3C: an all-zero trace id or span id is invalid; such a draw (2^-128, 2^-64) is replaced.
    const traceId = hex.startsWith(ZERO_TRACE, h) ? newTraceId() : hex.slice(h, h + 32)
    const spanId = hex.startsWith(ZERO_SPAN, h + 32) ? newSpanId() : hex.slice(h + 32, h + 48)
    PARTS[s] = '00-' + traceId + '-' + spanId + '-01'
  }
  tpBatch = PARTS.join('')
  tpNext = 0
}

/** A new sampled root traceparent (random trace and span ids). */
function freshTraceparent(): string {
  if (tpNext === BATCH) refillTraceparents()
  const at = tpNext++ * TP_LEN
  return tpBatch.slice(at, at + TP_LEN)
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

export interface TraceParent {
  traceId: string
  spanId: string
  /** W3C trace flags; bit 0 is "sampled". */
  flags: number
}

/** A well-formed traceparent's parts (version ff and all-zero ids are refused, per W3C). */
export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  if (!header || header.length !== 55) return undefined
  const m = TRACEPARENT.exec(header)
  if (!m || m[1] === 'ff' || m[2] === INVALID_TRACE || m[3] === '0000000000000000') return undefined
  return { traceId: m[2]!, spanId: m[3]!, flags: parseInt(m[4]!, 16) }
}

/** The trace id inside a traceparent header, if it is well formed. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (!traceparent) return undefined
  const m = TRACEPARENT.exec(traceparent)
  return m && m[2] !== INVALID_TRACE ? m[2] : undefined
}

// Callers hand the dispatcher either undici's legacy handler (onConnect/onHeaders/onData/…, used
// by undici's own request/fetch and Node's bundled fetch) or the newer controller-based one
// (onRequestStart/onResponseStart/…). Weft drives the legacy shape; this adapts the new one.

import type { Duplex } from 'node:stream'

export interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean
  onData?(chunk: Buffer): boolean
  onComplete?(trailers: Buffer[] | null): void
  onError?(err: Error): void
  onResponseStarted?(): void
  onUpgrade?(statusCode: number, rawHeaders: Buffer[], socket: Duplex): void
}

interface NewHandler {
  onRequestStart?(controller: Controller, context: unknown): void
  onResponseStart?(controller: Controller, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void
  onResponseData?(controller: Controller, chunk: Buffer): void
  onResponseEnd?(controller: Controller, trailers: Record<string, string | string[]>): void
  onResponseError?(controller: Controller, err: Error): void
  onRequestUpgrade?(controller: Controller, statusCode: number, headers: Record<string, string | string[]>, socket: Duplex): void
}

class Controller {
  paused = false
  aborted = false
  reason: Error | null = null
  resumeFn: (() => void) | undefined
  constructor(private readonly abortFn: (err?: Error) => void) {}
  pause(): void {
    this.paused = true
  }
  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.resumeFn?.()
  }
  abort(reason?: Error): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason ?? null
    this.abortFn(reason)
  }
}

function parseRaw(raw: Buffer[] | null): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  if (!raw) return out
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toString('latin1').toLowerCase()
    const v = raw[i + 1]!.toString('latin1')
    const prev = out[k]
    out[k] = prev === undefined ? v : ([] as string[]).concat(prev, v)
  }
  return out
}

export function toLegacyHandler(handler: object): LegacyHandler {
  const h = handler as NewHandler & LegacyHandler
  if (typeof h.onRequestStart !== 'function' && typeof h.onResponseStart !== 'function') return h
  let controller: Controller
  return {
    onConnect(abort, context) {
      controller = new Controller(abort)
      h.onRequestStart?.(controller, context)
    },
    onHeaders(statusCode, rawHeaders, resume, statusText) {
      controller.resumeFn = resume
      h.onResponseStart?.(controller, statusCode, parseRaw(rawHeaders), statusText)
      return !controller.paused
    },
    onData(chunk) {
      h.onResponseData?.(controller, chunk)
      return !controller.paused
    },
    onComplete(trailers) {
      h.onResponseEnd?.(controller, parseRaw(trailers))
    },
    onError(err) {
      h.onResponseError?.(controller, err)
    },
    ...(typeof h.onRequestUpgrade === 'function' && {
      onUpgrade(statusCode: number, rawHeaders: Buffer[], socket: Duplex) {
        h.onRequestUpgrade!(controller, statusCode, parseRaw(rawHeaders), socket)
      },
    }),
  }
}

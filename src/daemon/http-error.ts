// A refusal the daemon answers with: HTTP status plus a code from the one error table
// (src/errors/codes.ts), sent as { error: { code, message, details? } }. Thrown from anywhere in a
// request's handling; the server turns it into the answer (anything else is a 500, logged).
import type { WeftErrorCode } from '../errors/codes.js'

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: WeftErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message)
  }

  body(): { error: { code: string; message: string; details?: unknown } } {
    return { error: { code: this.code, message: this.message, ...(this.details !== undefined ? { details: this.details } : {}) } }
  }
}

/** 400: the request is malformed; the message names the field or the problem. */
export function badRequest(message: string, details?: unknown): HttpError {
  return new HttpError(400, 'WEFT_ERR_INVALID_ARG', message, details)
}

export function notFound(message: string): HttpError {
  return new HttpError(404, 'WEFT_ERR_NOT_FOUND', message)
}

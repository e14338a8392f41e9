// WeftError: the one error type the mesh raises, branded so it survives duplicate package copies.
import { ERROR_TABLE, type WeftErrorCode } from './codes.js'

const kWeftError = Symbol.for('weft.error')

/** Detail fields that say which rule fired; every field is optional. */
export interface WeftErrorDetails {
  service?: string
  route?: string
  attempts?: number
  endpointsTried?: string[]
  breakerState?: string
  configVersion?: number
  [key: string]: unknown
}

export class WeftError extends Error {
  readonly code: WeftErrorCode
  readonly httpStatus: number
  readonly grpcStatus: number
  readonly retryable: boolean
  details: WeftErrorDetails

  constructor(code: WeftErrorCode, message: string, options: { cause?: unknown; details?: WeftErrorDetails } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    const spec = ERROR_TABLE[code]
    this.name = 'WeftError'
    this.code = code
    this.httpStatus = spec.http
    this.grpcStatus = spec.grpc
    this.retryable = spec.retryable
    this.details = options.details ?? {}
  }

  get [kWeftError](): true {
    return true
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kWeftError] === true
  }

  toJSON(): { code: string; message: string; details: WeftErrorDetails } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

export function isWeftError(value: unknown, code?: WeftErrorCode): value is WeftError {
  return value instanceof WeftError && (code === undefined || value.code === code)
}

/** Throws WEFT_ERR_INVALID_ARG naming the option. */
export function invalidArg(option: string, problem: string): never {
  throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid option ${option}: ${problem}`, { details: { option } })
}

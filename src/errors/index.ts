export { WeftError, isWeftError, invalidArg, type WeftErrorDetails } from './weft-error.js'
export { ERROR_TABLE, GrpcStatus, errorSpec, type WeftErrorCode, type ErrorSpec } from './codes.js'

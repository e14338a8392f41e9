export { WeftError, isWeftError, invalidArg, type WeftErrorDetails } from './weft-error.js'
export { ERROR_TABLE, GrpcStatus, type WeftErrorCode, type ErrorSpec } from './codes.js'

// Public API of weft: createMesh and its types; nothing else is exported from the root.
export { createMesh, Mesh, type ConfigEvent } from './mesh.js'
export type { MeshOptions } from './options.js'
export { WeftError, isWeftError, ERROR_TABLE, type WeftErrorCode, type WeftErrorDetails } from './errors/index.js'
export type { ConfigIssue } from './config/types.js'
export type { Logger } from './util/logger.js'
export { Stack, type Layer } from './stack/index.js'

// The authorization engine's public surface for the data plane and `weft explain`.
export { AuthzEngine, compileAuthz } from './engine.js'
export { explanationLines } from './explain.js'
export { normalizePath } from './normalize-path.js'
export { normalizeHost } from './normalize-host.js'
export type { AuthzDecision, AuthzExplanation, AuthzOptions, AuthzReason, AuthzRequest, PolicyExplanation, RuleExplanation } from './types.js'

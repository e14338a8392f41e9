// The authorization engine's request, decision and explanation shapes (the data plane's contract).
import type { AuthorizationSettings, MeshSettings } from '../config/types.js'

/** What a decision reads from one inbound request. */
export interface AuthzRequest {
  /** The peer's SPIFFE ID from its checked certificate; undefined without mTLS. */
  principal?: string
  /** The namespace from the peer's SPIFFE ID. */
  namespace?: string
  /** "iss/sub" of a verified JWT; undefined when the request carried none. */
  requestPrincipal?: string
  /** The verified JWT's audiences, authorized presenter (azp) and claims. */
  auth?: { readonly audiences: readonly string[]; readonly presenter?: string; readonly claims: Readonly<Record<string, unknown>> }
  /** As sent (uppercase for anything node:http accepts). */
  method: string
  /** The raw request target (req.url): the engine normalises it, see normalize-path.ts. */
  path: string
  /** The local port the request arrived on. */
  port: number
  /** Lowercase header names, as node:http and grpc-js give them. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>
}

export type AuthzReason =
  /** A DENY policy's rule matched. */
  | 'deny-matched'
  /** An ALLOW policy's rule matched (and no DENY did). */
  | 'allow-matched'
  /** ALLOW policies select the service and none of their rules matched. */
  | 'no-allow-matched'
  /** No ALLOW policy selects the service and MeshConfig defaultAuthorization is DENY. */
  | 'default-deny'
  /** No ALLOW policy selects the service and the default is ALLOW (DENY policies did not match). */
  | 'no-policy'
  /** The path cannot be normalised safely (see normalizePath) and a policy matches on paths. */
  | 'path-invalid'
  /** The method is not an uppercase token and a policy matches on methods. */
  | 'method-invalid'

/**
 * One decision. Decisions without audit matches are shared frozen objects made at compile time:
 * read them, never change them.
 */
export interface AuthzDecision {
  readonly allowed: boolean
  /**
   * The deciding policy: the DENY or ALLOW policy that matched; for `no-allow-matched` the names of
   * every ALLOW policy that selects the service, joined with "," (any of them could have allowed
   * the request); undefined for the other reasons.
   */
  readonly policy?: string
  /** Index of the matching rule in that policy. */
  readonly rule?: number
  readonly reason: AuthzReason
  /** AUDIT policies that matched, in config order (they never change `allowed`). */
  readonly audited: readonly string[]
}

export interface AuthzOptions {
  /** The service whose inbound requests are decided. */
  service: string
  /** Its namespace. */
  namespace: string
  /** What a service no ALLOW policy selects does (MeshConfig). Default 'ALLOW'. */
  defaultAuthorization?: MeshSettings['defaultAuthorization']
}

/** Why one rule did or did not match. */
export interface RuleExplanation {
  index: number
  matched: boolean
  /** The first part that did not match, e.g. `from[0].principals: no peer identity (no mTLS)`. */
  why?: string
}

/** One policy of the config, in order: whether it selects the service and what its rules said. */
export interface PolicyExplanation {
  name: string
  namespace: string
  service?: string
  action: AuthorizationSettings['action']
  applies: boolean
  /** Why it does not apply (another namespace or service). */
  notApplied?: string
  /** The first matching rule's index. */
  matchedRule?: number
  rules: RuleExplanation[]
}

export interface AuthzExplanation {
  decision: AuthzDecision
  /** The normalised path the rules saw; undefined when it was refused. */
  path: string | undefined
  policies: PolicyExplanation[]
}

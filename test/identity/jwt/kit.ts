// Test kit for the JWT suite: signing keys, token forging, a counting JWKS server and an
// "attacker" server on loopback, a fake clock, and authenticators compiled from YAML.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import { loadText } from '../../../src/config/load.js'
import { formatIssue, validatePolicy } from '../../../src/config/validate.js'
import { compileRequestAuth, type JwtAuthenticator } from '../../../src/identity/jwt/authenticator.js'
import type { JwksRegistry } from '../../../src/identity/jwt/jwks-cache.js'
import type { Logger } from '../../../src/util/logger.js'

export class FakeClock {
  constructor(public ms = Date.UTC(2030, 0, 1)) {}
  readonly now = (): number => this.ms
  advance(ms: number): void {
    this.ms += ms
  }
  get seconds(): number {
    return Math.floor(this.ms / 1000)
  }
}

export interface TestKey {
  kid: string
  alg: 'ES256' | 'RS256'
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function makeKey(alg: 'ES256' | 'RS256', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' } }
}

export interface SignOptions {
  /** Header parameters to add or override (kid defaults to the key's). */
  header?: Record<string, unknown>
}

/** A token signed by `key` with `claims` exactly as given (times in seconds). */
export async function sign(key: TestKey, claims: JWTPayload, o: SignOptions = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...o.header } as never).sign(key.privateKey)
}

export const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

/** A compact token from raw parts, for forgeries jose would refuse to sign. */
export function forge(header: unknown, claims: unknown, signature = 'c2ln'): string {
  return `${b64(header)}.${b64(claims)}.${signature}`
}

/** A counting HTTP server: `respond` decides each answer; `requests` lists the paths asked for. */
export interface CountingServer {
  url: string
  requests: string[]
  /** 'reset' destroys the socket; 'hang' never answers. */
  respond: (req: IncomingMessage) => { status: number; body: string } | 'reset' | 'hang'
  close(): Promise<void>
}

export async function startServer(respond: CountingServer['respond']): Promise<CountingServer> {
  const state: CountingServer = { url: '', requests: [], respond, close: async () => undefined }
  const server: Server = createServer((req, res) => {
    state.requests.push(req.url ?? '')
    const answer = state.respond(req)
    if (answer === 'reset') return void req.socket.destroy()
    if (answer === 'hang') return
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  state.close = async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  }
  return state
}

/** A JWKS server whose key set and health can be changed between requests. */
export async function startJwksServer(keys: JWK[]): Promise<CountingServer & { keys: JWK[]; mode: 'ok' | 'down' | 'reset' | 'empty' | 'garbage' }> {
  const s = await startServer(() => {
    switch (s.mode) {
      case 'down': return { status: 503, body: 'unavailable' }
      case 'reset': return 'reset'
      case 'empty': return { status: 200, body: '{"keys":[]}' }
      case 'garbage': return { status: 200, body: '<html>placeholder</html>' }
      default: return { status: 200, body: JSON.stringify({ keys: s.keys }) }
    }
  }) as CountingServer & { keys: JWK[]; mode: 'ok' | 'down' | 'reset' | 'empty' | 'garbage' }
  s.keys = keys
  s.mode = 'ok'
  return s
}

export interface RuleYaml {
  issuer: string
  jwksUri?: string
  jwks?: { keys: JWK[] }
  audiences?: string[]
  algorithms?: string[]
  extra?: string
}

/** RequestAuthentication YAML for `rules`, validated (failing the test on any error). */
export function policyOf(rules: RuleYaml[], service = 'payments') {
  const body = rules.map((r) => [
    `    - issuer: ${JSON.stringify(r.issuer)}`,
    r.jwksUri ? `      jwksUri: ${JSON.stringify(r.jwksUri)}` : `      jwks: ${JSON.stringify(r.jwks)}`,
    `      audiences: ${JSON.stringify(r.audiences ?? ['payments'])}`,
    `      algorithms: ${JSON.stringify(r.algorithms ?? ['ES256'])}`,
    r.extra ?? '',
  ].filter(Boolean).join('\n')).join('\n')
  const text = `apiVersion: weft/v1\nkind: RequestAuthentication\nmetadata: { name: users }\nspec:\n  service: ${service}\n  jwtRules:\n${body}\n`
  const policy = validatePolicy(loadText(text, 'test.yaml'))
  const errors = policy.issues.filter((i) => i.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map(formatIssue).join('\n'))
  return policy
}

export function authenticatorOf(rules: RuleYaml[], jwks: JwksRegistry, clock: FakeClock, logger?: Logger): JwtAuthenticator {
  const a = compileRequestAuth(policyOf(rules).requestAuthentication, { service: 'payments', namespace: 'default', jwks, now: clock.now, ...(logger ? { logger } : {}) })
  if (!a) throw new Error('no authenticator compiled')
  return a
}

export const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, query: '' })

/** Claims that verify against rule defaults (aud payments), valid for 5 minutes from `clock`. */
export function goodClaims(clock: FakeClock, issuer: string, extra: JWTPayload = {}): JWTPayload {
  return { iss: issuer, sub: 'user-1', aud: 'payments', iat: clock.seconds, exp: clock.seconds + 300, ...extra }
}

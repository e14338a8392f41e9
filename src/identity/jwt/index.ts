// End-user JWT verification (RequestAuthentication) and JWT-SVID issuing: the public surface.
export { compileRequestAuth, authnError, JwtAuthenticator, type AuthnResult, type AuthnOk, type AuthnInvalid, type AuthnCheck, type AuthnInput, type AuthnStats, type CompileAuthnOptions } from './authenticator.js'
export { JwksRegistry, RemoteJwks, type JwksCacheOptions, type JwksStatus } from './jwks-cache.js'
export { StaticJwks, type KeyLookup, type KeySource } from './key-source.js'
export { JwtSvidIssuer, MAX_JWT_SVID_TTL_MS, type JwtSvid, type JwtSvidIssuerOptions, type JwtSvidRequest, type Jwks } from './jwt-svid.js'
export { MAX_TOKEN_LENGTH } from './token-parse.js'

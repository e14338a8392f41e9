// `weft jwt keys|rotate|retire [--force]`: the daemon's JWT-SVID signing keys and their rotation,
// apart from the CA's (`weft ca`). Rotate is prepared → active: the new key is published by
// GET /v1/jwks at once, the old one keeps signing until the activation 45 s later (so verifiers'
// cached JWKS can refresh first), then the new key signs. Retire drops the old key (its tokens are
// refused after) and is refused until those tokens can all have expired (5 min 30 s after the
// activation) unless --force.
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError } from './args.js'
import { withClient } from './client.js'
import { render, table } from './table.js'
import type { JwtKeysView } from '../daemon/jwt-keys.js'

/** What the daemon answers (its JSON, typed by the daemon's own view). */
type KeysView = JwtKeysView

const USAGE = 'weft jwt: usage: weft jwt keys|rotate|retire [--force] [-o table|json|yaml]'

export async function jwt(argv: readonly string[]): Promise<number> {
  const args = parseArgs('jwt', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG, force: { kind: 'boolean' } })
  const [sub, ...rest] = args.positional
  if (rest.length > 0 || (sub !== 'keys' && sub !== 'rotate' && sub !== 'retire')) throw new UsageError(USAGE)
  const force = args.booleans.force === true
  if (force && sub !== 'retire') throw new UsageError('weft jwt: --force applies to retire only')
  const format = outputFormat('jwt', args)
  return withClient(args, async (client) => {
    const view = sub === 'keys'
      ? await client.call<KeysView>('GET', '/v1/jwt/keys')
      : await client.call<KeysView>('POST', `/v1/jwt/${sub}`, sub === 'retire' ? { body: force ? { force: true } : {} } : {})
    if (sub === 'rotate') process.stderr.write(`rotated: GET /v1/jwks publishes the new key from now on; the old key keeps signing until ${view.activatesAt}, then the new one signs (tokens of the old key keep verifying). Then, from ${view.retireAfter}: weft jwt retire\n`)
    if (sub === 'retire') process.stderr.write('retired: the old key left the JWKS; tokens it signed are refused from now on (by each verifier once its cached JWKS is refreshed, within 10 min)\n')
    const rows = view.jwks.keys.map((k) => [k.kid ?? '', stateOf(view, k.kid)])
    const rotation = view.previousKid !== undefined ? `rotated ${view.rotatedAt}; the new key signs from ${view.activatesAt}; retire from ${view.retireAfter} (earlier: --force)\n` : ''
    process.stdout.write(render(format, view, () => `issuer ${view.issuer}\n` + table(['KID', 'STATE'], rows) + rotation))
    return 0
  })
}

function stateOf(view: KeysView, kid: string | undefined): string {
  if (kid === view.signingKid) return 'signing'
  if (kid === view.kid) return `prepared (published; signs from ${view.activatesAt})`
  return 'previous (verifies only)'
}

// `weft ca bundle|rotate|retire`: the daemon CA's trust bundle, and its rotation with overlap
// (docs/design/identity-plan.md): rotate adds a new root that signs from then on (instances
// re-issue within seconds), retire removes the old root (its certificates are refused after).
import { X509Certificate } from 'node:crypto'
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError } from './args.js'
import { withClient } from './client.js'
import { render, table } from './table.js'

interface Bundle {
  trustDomain: string
  sequence: number
  roots: string[]
}

const USAGE = 'weft ca: usage: weft ca bundle|rotate|retire [-o table|json|yaml]'

export async function ca(argv: readonly string[]): Promise<number> {
  const args = parseArgs('ca', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG })
  const [sub, ...rest] = args.positional
  if (rest.length > 0 || (sub !== 'bundle' && sub !== 'rotate' && sub !== 'retire')) throw new UsageError(USAGE)
  const format = outputFormat('ca', args)
  return withClient(args, async (client) => {
    const bundle = sub === 'bundle'
      ? await client.call<Bundle>('GET', '/v1/bundle')
      : (await client.call<{ bundle: Bundle }>('POST', `/v1/ca/${sub}`)).bundle
    if (sub === 'rotate') process.stderr.write('rotated: a new root signs from now on and both are trusted; instances re-issue within seconds. Then: weft ca retire\n')
    if (sub === 'retire') process.stderr.write('retired: the old root left the bundle; certificates it signed are refused from now on\n')
    const rows = bundle.roots.map((pem) => {
      const c = new X509Certificate(pem)
      return { subject: c.subject.replace(/\n/g, ', '), fingerprint: c.fingerprint256.slice(0, 23), notAfter: new Date(c.validTo).toISOString() }
    })
    process.stdout.write(render(format, bundle, () => `trust domain ${bundle.trustDomain}, bundle sequence ${bundle.sequence}\n` + table(['ROOT', 'SHA-256', 'NOT AFTER'], rows.map((r) => [r.subject, r.fingerprint, r.notAfter]))))
    return 0
  })
}

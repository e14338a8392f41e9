// `weft token create [--service S]… [-n NS]`: a join token for instances (POST /v1/tokens). The
// token alone goes to stdout, so `WEFT_TOKEN=$(weft token create --service payments)` works.
import { CONNECTION_FLAGS, parseArgs, UsageError } from './args.js'
import { withClient } from './client.js'

export async function token(argv: readonly string[]): Promise<number> {
  const args = parseArgs('token', argv, { ...CONNECTION_FLAGS, service: { kind: 'list' }, namespace: { kind: 'string', short: 'n' } })
  const [sub, ...rest] = args.positional
  if (sub !== 'create' || rest.length > 0) throw new UsageError('weft token: usage: weft token create [--service S]… [-n NAMESPACE]')
  const services = args.lists.service!
  return withClient(args, async (client) => {
    const body: { services?: string[]; namespace?: string } = {}
    if (services.length > 0) body.services = services
    if (args.strings.namespace !== undefined) body.namespace = args.strings.namespace
    const answer = await client.call<{ token: string }>('POST', '/v1/tokens', { body })
    process.stdout.write(answer.token + '\n')
    process.stderr.write(`join token for ${services.length > 0 ? services.join(', ') : 'any service'}; it is shown only now\n`)
    return 0
  })
}

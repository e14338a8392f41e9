// `weft explain --from SERVICE URL [-H 'name: value']… [-X METHOD]`: fetches the view an instance
// of SERVICE would get (GET /v1/snapshot?service=SERVICE) and says how that instance would send the
// request: which rule matches and why, which endpoints are eligible, which settings apply and
// where each comes from. The computation is in explain-model.ts.
import { formatIssue } from '../config/validate.js'
import type { EndpointMap } from '../control/protocol.js'
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError } from './args.js'
import { withClient } from './client.js'
import { explain, type Explanation, type FieldCheck } from './explain-model.js'
import { formatLabels, render, table } from './table.js'

const USAGE = "weft explain --from SERVICE URL [-H 'name: value']… [-X METHOD] [-o table|json|yaml]"

export async function explainCommand(argv: readonly string[]): Promise<number> {
  const args = parseArgs('explain', argv, {
    ...CONNECTION_FLAGS,
    ...OUTPUT_FLAG,
    from: { kind: 'string' },
    header: { kind: 'list', short: 'H' },
    request: { kind: 'string', short: 'X' },
  })
  const from = args.strings.from
  if (from === undefined || from === '') throw new UsageError(`weft explain: needs --from SERVICE (the caller whose view is used)\nusage: ${USAGE}`)
  if (args.positional.length !== 1) throw new UsageError(`weft explain: needs one URL\nusage: ${USAGE}`)
  const format = outputFormat('explain', args)
  const raw = args.positional[0]!
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`
  try {
    new URL(url)
  } catch {
    throw new UsageError(`weft explain: "${raw}" is not a URL (like http://payments/charge)`)
  }
  const headers = args.lists.header!.map((h): [string, string] => {
    const colon = h.indexOf(':')
    if (colon <= 0) throw new UsageError(`weft explain: -H takes 'name: value' (got "${h}")`)
    return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()]
  })
  const method = args.strings.request ?? 'GET'
  if (!/^[A-Za-z]+$/.test(method)) throw new UsageError(`weft explain: -X takes an HTTP method (got "${method}")`)

  return withClient(args, async (client) => {
    const snap = await client.call<{ version: number; resources?: object[]; endpoints?: EndpointMap }>('GET', `/v1/snapshot?service=${encodeURIComponent(from)}`)
    const result = explain({ version: snap.version, resources: snap.resources ?? [], endpoints: snap.endpoints ?? {} }, { from, url, method, headers })
    process.stdout.write(render(format, result, () => describeExplanation(result)))
    return result.kind === 'invalid' ? 1 : 0
  })
}

const mark = (ok: boolean) => (ok ? '✓' : '✗')

export function describeExplanation(x: Explanation): string {
  if (x.kind === 'invalid') {
    return x.issues.map((i) => formatIssue(i) + '\n').join('') +
      `the view of ${x.from} at version ${x.version} is invalid: an instance would NACK it and keep serving its last good version\n`
  }
  const out: string[] = [`${x.method} ${x.url} from ${x.from} (policy version ${x.version})`, '']
  if (x.kind === 'passthrough') {
    out.push(`passes through untouched: ${x.reason}.`)
    out.push('The mesh hands it to plain undici as written: no routing, retries, balancing, circuit breaking or mesh metrics.')
    out.push(`services the mesh knows: ${x.services.length > 0 ? x.services.join(', ') : 'none'}`)
    return out.join('\n') + '\n'
  }
  out.push(`service    ${x.service.name} (namespace ${x.service.namespace}, ${x.service.protocol}${x.service.declared ? '' : ', no Service resource'})`)
  out.push(`endpoints  from ${x.endpointSource}`)
  out.push('')
  if (x.rules.length === 0) out.push('rules      none: no Route for this service')
  else {
    out.push('rules (in order, first match wins):')
    for (const r of x.rules) {
      const head = r.outcome === 'matched' ? '✓' : r.outcome === 'no match' ? '✗' : '·'
      out.push(`  ${head} ${r.rule}  (Route ${r.route} rule ${r.index})  ${r.outcome}`)
      if (r.matches.length === 0) out.push('      no matches: takes every request')
      r.matches.forEach((checks, i) => out.push(`      matches[${i}]: ${describeChecks(checks)}`))
    }
  }
  out.push('')
  out.push(`route      ${x.chosen.fallback ? 'default (fallback)' : x.chosen.rule}: ${x.chosen.why}`)
  out.push('')
  out.push('backends:')
  for (const b of x.backends) {
    const of = b.service === x.service.name ? '' : `service ${b.service}, `
    const subset = of + (Object.keys(b.subset).length === 0 ? 'all endpoints' : `subset ${formatLabels(b.subset)}`)
    out.push(`  ${subset}  weight ${b.weight} (${b.percent}%)  ${b.eligible} of ${b.endpoints.length} endpoint${b.endpoints.length === 1 ? '' : 's'} eligible`)
    if (b.eligible === 0) out.push('    no eligible endpoint: requests to it fail with WEFT_ERR_NO_ENDPOINTS')
    const shown = b.endpoints.slice(0, 20)
    for (const e of shown) out.push(`    ${mark(e.eligible)} ${e.address}  ${formatLabels(e.labels)}${e.why ? `  (${e.why})` : ''}`)
    if (b.endpoints.length > shown.length) out.push(`    … ${b.endpoints.length - shown.length} more`)
  }
  out.push('')
  out.push('settings:')
  const t = table(['', ''], x.settings.map((s) => [s.name, `${s.value}  (${s.from})`]))
  out.push(...t.trimEnd().split('\n').slice(1).map((l) => '  ' + l))
  out.push('')
  const a = x.access
  out.push(`access     ${a.allowed ? 'allowed' : 'DENIED'} for ${a.principal}: ${a.why}`)
  out.push(`mtls       ${a.mtls.mode} (${a.mtls.from}); enforced under a daemon, plaintext in embedded mode`)
  for (const p of a.policies) {
    if (!p.applies) {
      out.push(`  · ${p.action} ${p.name}: does not apply (${p.notApplied ?? 'another service'})`)
      continue
    }
    out.push(`  ${p.rules.some((r) => r.matched) ? '✓' : '✗'} ${p.action} ${p.name}`)
    for (const r of p.rules) out.push(`      rule ${r.index}: ${r.matched ? 'matches' : `no match${r.why ? ` (${r.why})` : ''}`}`)
  }
  if (x.notes.length > 0) {
    out.push('')
    out.push('notes:')
    for (const n of x.notes) out.push(`  - ${n}`)
  }
  return out.join('\n') + '\n'
}

function describeChecks(checks: FieldCheck[]): string {
  if (checks.length === 0) return 'empty: matches every request'
  return checks.map((c) => `${c.wants} (got ${c.got}) ${mark(c.ok)}`).join(' and ')
}

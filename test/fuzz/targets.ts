// The fuzz targets of RELIABILITY B1: the code that reads what an attacker or a broken peer can
// write — policy text, SPIFFE IDs, JWT headers, the control stream, request paths for authorization.
// Each `run` takes one input and throws only when the code under test broke its contract (an
// exception it must not raise, or a property that must hold); the runner (scripts/fuzz.ts) and the
// regression test (regression.test.ts) call them alike. Seeds are the files in corpus/<target>/.
import { loadText } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { spiffeIdProblem, trySpiffeId } from '../../src/identity/spiffe-id.js'
import { parseCompact } from '../../src/identity/jwt/token-parse.js'
import { NdjsonLines } from '../../src/control/ndjson.js'
import { parseWatchMessage } from '../../src/control/ndjson.js'
import { malformed, viewOf, type ControlView } from '../../src/control/views.js'
import { normalizePath } from '../../src/authz/normalize-path.js'

export interface FuzzTarget {
  name: string
  /** Tokens the mutator inserts (besides those cut from the seeds). */
  dictionary: readonly string[]
  /** Longest input tried, in characters. */
  maxLength: number
  run(input: string): void
}

/** A broken contract: what the fuzzer reports (any other exception is a crash, reported too). */
export class PropertyViolation extends Error {}

function must(ok: boolean, what: string): void {
  if (!ok) throw new PropertyViolation(what)
}

const policy: FuzzTarget = {
  name: 'policy',
  dictionary: ['apiVersion: weft/v1\n', 'kind: ', 'Service', 'Route', 'AuthorizationPolicy', 'RequestAuthentication', 'PeerAuthentication', 'MeshConfig', 'metadata: { name: a }\n', 'apiVersion: gateway.networking.k8s.io/v1\n', 'HTTPRoute', 'GRPCRoute', 'parentRefs:', 'backendRefs:', 'kind: Service', 'apiVersion: split.smi-spec.io/v1alpha4\n', 'TrafficSplit', 'HTTPRouteGroup', 'TrafficTarget', 'apiVersion: access.smi-spec.io/v1alpha3\n', 'pathRegex: ', '__proto__', 'constructor', 'spec:', 'rules:', 'matches:', 'backends:', 'regex: ', 'prefix: ', 'exact: ', 'subset:', 'weight: ', 'timeout: ', 'retries:', 'endpoints:', 'address: ', '---\n', '{', '}', '[', ']', '- ', ': ', '"', "'", '&a ', '*a', '!!binary ', '<<: ', '~', '1e309', '-1', '0x', '((a+)+)', '\t', '\u0000', '\n  ', '#'],
  maxLength: 16_384,
  run(input) {
    // Never throws: every problem is an issue with a code, a message and a place.
    for (const file of ['fuzz.yaml', 'fuzz.json']) {
      const loaded = loadText(input, file)
      // The loader catches a parser stack overflow as a finding; the pre-check (nesting.ts) should
      // have refused the input before the parser ran, so reaching the catch is a broken property.
      must(!loaded.issues.some((i) => i.message.startsWith('nested too deeply to parse')), 'the nesting pre-check let through an input the YAML parser overflowed on')
      const result = validatePolicy(loaded)
      for (const issue of result.issues) must(typeof issue.code === 'string' && issue.code.startsWith('WEFT_') && typeof issue.message === 'string' && issue.message.length > 0, `an issue without a code or message: ${JSON.stringify(issue)}`)
    }
  },
}

const spiffeId: FuzzTarget = {
  name: 'spiffe-id',
  dictionary: ['spiffe://', 'SPIFFE://', 'weft.local', '/ns/', '/sa/', '%2F', '%00', '..', '.', '//', ':443', '@', '?', '#', '\u0000', 'é', 'A', '-', '_'],
  maxLength: 4_096,
  run(input) {
    const problem = spiffeIdProblem(input)
    const id = trySpiffeId(input)
    must((problem === undefined) === (id !== undefined), `spiffeIdProblem and trySpiffeId disagree on ${JSON.stringify(input)}`)
  },
}

const jwt: FuzzTarget = {
  name: 'jwt-header',
  dictionary: ['.', 'eyJ', 'eyJhbGciOiJub25lIn0', 'eyJhbGciOiJIUzI1NiIsImtpZCI6Ii4uLyJ9', 'e30', 'W10', 'bnVsbA', '-', '_', '=', '+', '/', '%'],
  maxLength: 16_384,
  run(input) {
    const r = parseCompact(input)
    if (typeof r === 'string') return
    must(typeof r.header === 'object' && r.header !== null && !Array.isArray(r.header), 'a header that is not an object')
    must(typeof r.payload === 'object' && r.payload !== null && !Array.isArray(r.payload), 'claims that are not an object')
  },
}

/** The control stream as an instance reads it: NDJSON lines, each a message, each checked, then viewed. */
const controlStream: FuzzTarget = {
  name: 'control-stream',
  dictionary: ['\n', '{"type":"snapshot","version":1,"resources":[],"endpoints":{}}', '"type":', '"policy"', '"endpoints"', '"ping"', '"bundle"', '"version":', '"base":', '"resources":', '"deleted":', '"critical":', '{', '}', '[', ']', ',', '"', ':', 'null', '1e309', '-0', '9007199254740993', '"default/payments"', '{"address":"127.0.0.1:1","protocol":"http","labels":{}}'],
  maxLength: 65_536,
  run(input) {
    const lines = new NdjsonLines(1 << 20)
    let latest: ControlView | undefined
    const bytes = Buffer.from(input)
    // Two chunks, split where the input says, so a line may arrive in pieces.
    const cut = bytes.length === 0 ? 0 : bytes[0]! % (bytes.length + 1)
    for (const chunk of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
      let got: string[]
      try {
        got = lines.push(chunk)
      } catch (err) {
        must((err as Error).message.startsWith('watch stream line longer than'), `NdjsonLines threw ${(err as Error).message}`)
        return
      }
      for (const line of got) {
        let msg
        try {
          msg = parseWatchMessage(line)
        } catch (err) {
          must((err as Error).message.startsWith('watch stream: '), `parseWatchMessage threw ${(err as Error).message}`)
          continue
        }
        if (malformed(msg) !== undefined) continue
        const view = viewOf(msg, latest)
        if (view) latest = view
      }
    }
  },
}

const authzPath: FuzzTarget = {
  name: 'authz-path',
  dictionary: ['/', '//', '%2F', '%2f', '%5C', '%5c', '\\', '..', '%2e', '%2E%2E', '.', '%00', '%', '%%', '%zz', ';', '?', '#', 'admin', '/admin', 'é', '%C3%A9', '%c0%af', '\u0000'],
  maxLength: 8_192,
  run(input) {
    const once = normalizePath(input)
    if (once === undefined) return
    must(once.startsWith('/'), `normalizePath(${JSON.stringify(input)}) = ${JSON.stringify(once)} does not start with "/"`)
    must(normalizePath(once) === once, `normalizePath is not idempotent on ${JSON.stringify(input)}: ${JSON.stringify(once)} → ${JSON.stringify(normalizePath(once))}`)
  },
}

export const TARGETS: readonly FuzzTarget[] = [policy, spiffeId, jwt, controlStream, authzPath]

export function targetNamed(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name)
  if (!t) throw new Error(`no fuzz target "${name}" (have: ${TARGETS.map((x) => x.name).join(', ')})`)
  return t
}

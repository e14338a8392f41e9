// RELIABILITY B2: `weft check` (the `istioctl analyze` analogue) on a committed corpus of bad
// configs (test/fixtures/check-corpus: dangling references, overlapping routes, ALLOW with a
// negative match, unknown fields and kinds, catastrophic-backtracking and broken regexes, policies
// for no workload, unsigned/HMAC JWT algorithms, plain-http JWKS, empty subsets, broken YAML,
// duplicates, a rule-less DENY). Each file states its findings in `# expect:` lines — severity,
// stable code, resource, field path and line:column — and the checker must report exactly those.
// `weft check` exits 1 when any file has an error and 0 on warnings alone; the daemon refuses the
// same error inputs at admission (422, same codes, nothing stored or pushed) and takes the
// warning-only ones with the same warnings. A new bad-config case is a new file here.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadFile } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { applyPolicy, call, startTestDaemon } from '../helpers/daemon.js'

const DIR = join(import.meta.dirname, '../fixtures/check-corpus')
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()

interface Expected {
  severity: 'error' | 'warning'
  code: string
  resource: string
  path: string
  line: number
  column: number
}

/** The `# expect: <severity> <code> <resource> <path|-> <line>:<column>` lines of a corpus file. */
function expectations(file: string): Expected[] {
  return readFileSync(join(DIR, file), 'utf8').split('\n').filter((l) => l.startsWith('# expect: ')).map((l) => {
    const [severity, code, resource, path, at] = l.slice('# expect: '.length).split(' ')
    const [line, column] = at!.split(':').map(Number)
    return { severity: severity as Expected['severity'], code: code!, resource: resource!, path: path === '-' ? '' : path!, line: line!, column: column! }
  })
}

const key = (e: Expected) => `${e.severity} ${e.code} ${e.resource} ${e.path || '-'} ${e.line}:${e.column}`
const hasError = (file: string) => expectations(file).some((e) => e.severity === 'error')
const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' })

test('the corpus covers the B2 cases, and every file states what it must be told', () => {
  assert.ok(FILES.length >= 15, `${FILES.length} files`)
  const codes = new Set(FILES.flatMap((f) => expectations(f).map((e) => e.code)))
  for (const code of ['WEFT_E_REF_UNKNOWN', 'WEFT_W_ROUTE_SHADOWED', 'WEFT_W_AUTHZ_NEGATIVE_ALLOW', 'WEFT_E_FIELD_UNKNOWN', 'WEFT_E_REGEX_UNSAFE', 'WEFT_W_SERVICE_UNKNOWN', 'WEFT_E_KIND_UNKNOWN']) {
    assert.ok(codes.has(code), `a corpus file for ${code}`)
  }
  for (const f of FILES) assert.ok(expectations(f).length > 0, `${f} has # expect: lines`)
})

test('weft check reports exactly the findings each corpus file expects: code, resource, field path, line:column', () => {
  for (const f of FILES) {
    const found = validatePolicy(loadFile(join(DIR, f))).issues.map((i) => key({ severity: i.severity, code: i.code, resource: i.resource, path: i.path, line: i.line ?? 0, column: i.column ?? 0 }))
    assert.deepEqual(found.sort(), expectations(f).map(key).sort(), f)
  }
})

test('the weft check command: exit 1 when a file has an error, 0 on warnings alone, one line per finding', () => {
  const all = cli(['check', ...FILES.flatMap((f) => ['-f', join(DIR, f)])])
  assert.equal(all.status, 1, all.stderr)
  for (const f of FILES) {
    for (const e of expectations(f)) {
      const at = `${join(DIR, f)}:${e.line}:${e.column} ${e.severity} ${e.code} ${e.resource || '-'}${e.path ? ` ${e.path}` : ''}:`
      assert.ok(all.stdout.includes(at), `${at}\n${all.stdout}`)
    }
  }
  const warningsOnly = FILES.filter((f) => !hasError(f))
  assert.ok(warningsOnly.length >= 5)
  const ok = cli(['check', ...warningsOnly.flatMap((f) => ['-f', join(DIR, f)])])
  assert.equal(ok.status, 0, ok.stdout)
})

test('the daemon refuses the corpus\'s error files at admission with the same codes (nothing stored, nothing pushed) and takes the warning-only ones with the same warnings', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const version = async () => ((await call(d.url, 'GET', '/v1/policy', d.adminToken)).body as { version: number }).version
  for (const f of FILES) {
    const expected = expectations(f)
    const before = await version()
    const r = await applyPolicy(d, readFileSync(join(DIR, f), 'utf8'))
    if (hasError(f)) {
      assert.equal(r.status, 422, `${f}: ${JSON.stringify(r.body)}`)
      const issues = r.body.error.details.issues as { severity: string; code: string; resource: string; path: string }[]
      for (const e of expected.filter((x) => x.severity === 'error')) {
        assert.ok(issues.some((i) => i.severity === 'error' && i.code === e.code && i.path === e.path), `${f}: ${e.code} at ${e.path} in ${JSON.stringify(issues)}`)
      }
      assert.equal(await version(), before, `${f}: nothing stored`)
    } else {
      assert.equal(r.status, 200, `${f}: ${JSON.stringify(r.body)}`)
      const warned = (r.body.warnings as { code: string; path: string }[]).map((w) => `${w.code} ${w.path}`)
      for (const e of expected) assert.ok(warned.includes(`${e.code} ${e.path}`), `${f}: ${e.code} ${e.path} in ${JSON.stringify(warned)}`)
    }
  }
})

// An admin change names who made it (RELIABILITY "admin push, dry-run, audit"): each admin write
// that succeeds — apply, dry-run, delete, rollback, token, CA and JWT-key rotation, revocation — is
// logged with the admin credential, the caller's address and, when the client names one, the person
// (weft-actor: `weft` sends user@host; marked as the client's claim). Reads and refusals are not
// audit lines (refusals have their own, rate-limited). Real daemon; the CLI as a subprocess.
import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { test } from 'node:test'
import { capturingLogger } from '../helpers/mesh.js'
import { call, startTestDaemon } from '../helpers/daemon.js'
import { request } from 'undici'
import { cli, startCliDaemon, writeFile } from '../cli/kit.js'

const SERVICE = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: { timeout: 2s }\n'
const audits = (lines: string[]) => lines.filter((l) => l.includes('control daemon: admin '))

test('each admin write that succeeds is logged with the credential, the address and the actor the client names; reads and refusals are not audit lines', async (t) => {
  const log = capturingLogger()
  const d = await startTestDaemon({ logger: log })
  t.after(() => d.daemon.close())
  const post = (path: string, body: string, actor?: string) => request(d.url + path, { method: 'POST', headers: { authorization: `Bearer ${d.adminToken}`, 'content-type': 'application/yaml', ...(actor ? { 'weft-actor': actor } : {}) }, body })

  const applied = await post('/v1/policy', SERVICE, 'alice@laptop')
  assert.equal(applied.statusCode, 200)
  await applied.body.dump()
  const dry = await post('/v1/policy?dryRun=1', SERVICE.replace('2s', '3s'))
  assert.equal(dry.statusCode, 200)
  await dry.body.dump()
  assert.equal((await call(d.url, 'GET', '/v1/status', d.adminToken)).status, 200)
  assert.equal((await call(d.url, 'POST', '/v1/policy', 'not-a-token', SERVICE, 'application/yaml')).status, 401)
  assert.equal((await call(d.url, 'DELETE', '/v1/policy/Service/payments', d.adminToken)).status, 200)

  assert.deepEqual(audits(log.lines), [
    'info control daemon: admin POST /v1/policy answered 200, by the admin token from 127.0.0.1 (alice@laptop, as the client says)',
    'info control daemon: admin POST /v1/policy?dryRun=1 answered 200, by the admin token from 127.0.0.1',
    'info control daemon: admin DELETE /v1/policy/Service/payments answered 200, by the admin token from 127.0.0.1',
  ])
  assert.ok(log.lines.some((l) => l.includes('refused POST /v1/policy')), 'the refusal has its own line')
})

test('weft apply names the user and host running it in the daemon\'s audit line', async (t) => {
  const log = capturingLogger()
  const d = await startCliDaemon({ logger: log })
  t.after(() => d.close())
  const file = writeFile(mkdtempSync(`${tmpdir()}/weft-audit-`), 'svc.yaml', SERVICE)
  const r = await cli(['apply', '-f', file, ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  const line = audits(log.lines).find((l) => l.includes('POST /v1/policy'))
  assert.ok(line, log.lines.join('\n'))
  assert.match(line, new RegExp(`\\(\\S+@${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, as the client says\\)$`))
})

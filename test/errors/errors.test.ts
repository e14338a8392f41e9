import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { ERROR_TABLE, WeftError, isWeftError } from '../../src/errors/index.js'
import { renderErrorDocs } from '../../scripts/gen-error-docs.js'

test('docs/errors.md lists every code of the one table (regenerate with scripts/gen-error-docs.ts)', () => {
  assert.equal(readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8'), renderErrorDocs())
  for (const code of Object.keys(ERROR_TABLE)) assert.ok(renderErrorDocs().includes(`\`${code}\``))
})

test('WeftError takes status, gRPC status and retryable from the table, and keeps cause and details', () => {
  const cause = new Error('ECONNREFUSED')
  const e = new WeftError('WEFT_ERR_CONNECT_FAILED', 'cannot connect', { cause, details: { service: 'payments' } })
  assert.equal(e.httpStatus, 503)
  assert.equal(e.grpcStatus, 14)
  assert.equal(e.retryable, true)
  assert.equal(e.cause, cause)
  assert.deepEqual(e.toJSON(), { code: 'WEFT_ERR_CONNECT_FAILED', message: 'cannot connect', details: { service: 'payments' } })
})

test('instanceof survives a second copy of the package (branded with Symbol.for)', () => {
  const foreign = Object.create({ [Symbol.for('weft.error')]: true })
  assert.ok(foreign instanceof WeftError)
  assert.ok(!(new Error('x') instanceof WeftError))
  assert.ok(isWeftError(new WeftError('WEFT_ERR_CLOSED', 'closed'), 'WEFT_ERR_CLOSED'))
})

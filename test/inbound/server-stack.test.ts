import assert from 'node:assert/strict'
import { test } from 'node:test'
import { defaultServerStack } from '../../src/inbound/server-stack.js'

test('the default server stack order is pinned: telemetry, deadline, shed, identity, authz, then the handler', () => {
  const stack = defaultServerStack()
  assert.deepEqual(stack.roles(), ['telemetry', 'deadline', 'shed', 'identity', 'authz'])
  // describe() gives every layer's reason, so `weft explain` can print the chain.
  for (const role of stack.roles()) assert.match(stack.describe(), new RegExp(role))
})

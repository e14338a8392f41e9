import assert from 'node:assert/strict'
import { test } from 'node:test'
import { defaultClientStack } from '../../src/client-stack.js'
import { WeftError } from '../../src/errors/index.js'
import { Stack, runHandler, type Layer } from '../../src/stack/index.js'

type L = Layer<string[], string[], string>
const tag = (role: string): L => ({ role, why: `adds ${role}`, wrap: (next, target) => (req, done) => next([...req, `${role}@${target}`], done) })

test('the default client stack order is pinned (a reorder must be a reviewed decision)', () => {
  assert.deepEqual(defaultClientStack().roles(), [
    'telemetry', 'trace', 'deadline', 'fault', 'mirror', 'limit', 'circuit', 'retry', 'balance', 'endpoint-stats', 'attempt-timeout', 'identity',
  ])
})

test('describe() prints the chain outermost first with the reason for each position', () => {
  const text = defaultClientStack().describe()
  const lines = text.split('\n')
  assert.equal(lines.length, 12)
  assert.match(lines[0]!, /1\. telemetry — outermost/)
  assert.match(lines[4]!, /5\. mirror — below fault/)
  assert.match(lines[6]!, /7\. circuit — above retries/)
})

test('build() composes outermost first around the terminal handler', async () => {
  const stack = new Stack<string[], string[], string>([tag('a'), tag('b'), tag('c')])
  const handler = stack.build((req, done) => done(null, [...req, 'terminal']), 'T')
  assert.deepEqual(await runHandler(handler, []), ['a@T', 'b@T', 'c@T', 'terminal'])
})

test('stacks are immutable and editable by role', async () => {
  const base = new Stack<string[], string[], string>([tag('a'), tag('b')])
  const edited = base.insertBefore('b', tag('x')).insertAfter('b', tag('y')).replace('a', tag('z')).remove('x')
  assert.deepEqual(base.roles(), ['a', 'b'])
  assert.deepEqual(edited.roles(), ['z', 'b', 'y'])
  assert.ok(Object.isFrozen(edited.layers))
})

test('editing an unknown role or adding a duplicate role throws WEFT_ERR_INVALID_ARG', () => {
  const base = new Stack<string[], string[], string>([tag('a')])
  assert.throws(() => base.remove('nope'), (e: unknown) => e instanceof WeftError && e.code === 'WEFT_ERR_INVALID_ARG' && /nope/.test(e.message))
  assert.throws(() => base.insertAfter('a', tag('a')), /duplicate layer role "a"/)
})

test('a layer that returns next for a target costs nothing for it', () => {
  const passthrough: L = { role: 'p', wrap: (next) => next }
  const terminal = (r: string[], done: (err: Error | null, res?: string[]) => void) => done(null, r)
  assert.equal(new Stack([passthrough]).build(terminal, 't'), terminal)
})

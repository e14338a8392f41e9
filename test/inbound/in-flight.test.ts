// InFlightCalls: the core's list of inbound calls in flight, which drain walks to ask each call's
// front end to close its connection after the response.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InFlightCalls } from '../../src/inbound/in-flight.js'
import type { InboundCall } from '../../src/inbound/call.js'

/** Just the two fields the list threads through (plus a name to read the order by). */
const call = (name: string) => ({ name, prevInFlight: undefined, nextInFlight: undefined }) as unknown as InboundCall & { name: string }
const names = (list: InFlightCalls) => {
  const out: string[] = []
  list.forEach((c) => out.push((c as InboundCall & { name: string }).name))
  return out
}

test('add, delete from the head, the middle and the tail, and a second delete of the same call is a no-op', () => {
  const list = new InFlightCalls()
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(call)
  for (const x of [a, b, c, d]) list.add(x!)
  assert.equal(list.size, 4)
  assert.deepEqual(names(list), ['d', 'c', 'b', 'a'])
  list.delete(c!)
  assert.deepEqual(names(list), ['d', 'b', 'a'], 'middle')
  list.delete(d!)
  assert.deepEqual(names(list), ['b', 'a'], 'head')
  list.delete(a!)
  assert.deepEqual(names(list), ['b'], 'tail')
  list.delete(a!)
  list.delete(c!)
  assert.equal(list.size, 1, 'deleting a call already removed changes nothing')
  assert.deepEqual(names(list), ['b'])
  list.delete(b!)
  assert.equal(list.size, 0)
  assert.deepEqual(names(list), [])
  assert.equal(b!.nextInFlight, undefined, 'a removed call holds no neighbour (nothing kept alive through it)')
})

test('forEach visits every call once even when the callback removes the call it is given', () => {
  const list = new InFlightCalls()
  const calls = ['a', 'b', 'c'].map(call)
  for (const x of calls) list.add(x)
  const seen: string[] = []
  list.forEach((c) => {
    seen.push((c as InboundCall & { name: string }).name)
    list.delete(c)
  })
  assert.deepEqual(seen, ['c', 'b', 'a'])
  assert.equal(list.size, 0)
})

// The daemon's per-instance sync state (src/daemon/status.ts) across a failover between daemons
// sharing a store, which can number one content differently: an instance arrives holding the old
// daemon's higher number, resends its ACK of it, and takes this daemon's lower number for the same
// view. It must end SYNCED here, in whichever order the two ACKs arrive.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { StatusBoard } from '../../src/daemon/status.js'

function failedOver(acks: number[]): string {
  const b = new StatusBoard()
  b.registered('i1')
  b.opened('i1', true)
  b.sent('i1', 20)
  for (const v of acks) b.ack('i1', v, undefined)
  const v = b.view('i1', true)
  return `${v.state} sent ${v.sentVersion} acked ${v.ackedVersion}`
}

test('after a failover, the resent ACK of the old daemon\'s higher number does not leave the instance STALE, in either order', () => {
  assert.equal(failedOver([21, 20]), 'SYNCED sent 20 acked 20')
  assert.equal(failedOver([20, 21]), 'SYNCED sent 20 acked 20')
})

test('the resend that came before this daemon sent anything counts until the ACK of what it sent', () => {
  const b = new StatusBoard()
  b.registered('i1')
  b.ack('i1', 21, undefined)
  assert.equal(b.view('i1', true).ackedVersion, 21)
  b.opened('i1')
  b.sent('i1', 20)
  assert.equal(b.view('i1', true).state, 'STALE')
  b.ack('i1', 20, undefined)
  assert.equal(b.view('i1', true).state, 'SYNCED')
})

test('versions still only grow otherwise: a late ACK of an older version does not move the state back', () => {
  const b = new StatusBoard()
  b.registered('i1')
  b.opened('i1')
  b.sent('i1', 20)
  b.ack('i1', 20, undefined)
  b.sent('i1', 25)
  b.ack('i1', 25, undefined)
  b.ack('i1', 20, undefined)
  const v = b.view('i1', true)
  assert.equal(`${v.state} ${v.ackedVersion}`, 'SYNCED 25')
  // A NACK is still recorded and cleared by a later ACK.
  b.sent('i1', 30)
  b.ack('i1', 30, 'bad route')
  assert.equal(b.view('i1', true).state, 'NACKED')
  b.sent('i1', 31)
  b.ack('i1', 31, undefined)
  assert.equal(b.view('i1', true).state, 'SYNCED')
})

// Per-call credentials (grpc-js CallOptions.credentials) on a mesh client: their metadata reaches
// the server (they were dropped silently before), and a failing plugin ends the call as grpc-js
// ends it. Real grpc-js server on loopback.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { get, grpc, grpcFixture, ledgerImpl } from '../helpers/grpc-kit.js'

const fx = grpcFixture()

test('CallOptions.credentials: the plugin is asked once with the service URL and method, and its metadata reaches the server', async () => {
  const seen: (string | undefined)[] = []
  const ledger = await fx.ledger(ledgerImpl('ledger', { onCall: (_m, call) => seen.push(call.metadata.get('authorization')[0] as string | undefined) }))
  const { client } = await fx.clientOf([ledger])
  const asked: { service_url: string; method_name: string }[] = []
  const credentials = grpc.credentials.createFromMetadataGenerator((opts, cb) => {
    asked.push(opts)
    const md = new grpc.Metadata()
    md.set('authorization', 'Bearer t-1')
    cb(null, md)
  })
  const md = new grpc.Metadata()
  md.set('x-mine', 'kept')
  assert.equal((await get(client, { id: 'a' }, { credentials }, md)).from, 'ledger')
  assert.deepEqual(seen, ['Bearer t-1'])
  assert.deepEqual(asked, [{ service_url: 'https://ledger/weft.test.Ledger', method_name: 'Get' }])
  assert.equal(md.get('authorization').length, 0, 'the caller\'s Metadata object is not changed')
  // A call without credentials sends none.
  await get(client, { id: 'b' })
  assert.deepEqual(seen, ['Bearer t-1', undefined])
})

test('a failing credentials plugin ends the call as grpc-js does: UNAVAILABLE, its own status, or INTERNAL for a status reserved to the library (gRFC A54); nothing is sent', async () => {
  let served = 0
  const ledger = await fx.ledger(ledgerImpl('ledger', { onCall: () => served++ }))
  const { client } = await fx.clientOf([ledger])
  const failing = (err: Error) => grpc.credentials.createFromMetadataGenerator((_o, cb) => cb(err))
  const codeOf = async (err: Error) => {
    const e = (await get(client, { id: 'x' }, { credentials: failing(err) }).catch((x: grpc.ServiceError) => x)) as grpc.ServiceError
    return [e.code, e.details]
  }
  assert.deepEqual(await codeOf(new Error('token service down')), [grpc.status.UNAVAILABLE, 'Getting metadata from plugin failed with error: token service down'])
  assert.deepEqual((await codeOf(Object.assign(new Error('no token'), { code: grpc.status.UNAUTHENTICATED })))[0], grpc.status.UNAUTHENTICATED)
  assert.deepEqual((await codeOf(Object.assign(new Error('bad'), { code: grpc.status.INVALID_ARGUMENT })))[0], grpc.status.INTERNAL)
  assert.equal(served, 0)
})

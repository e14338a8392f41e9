// LoadMonitor.reportOn: the weft-load value goes to each connection once per load sample.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LoadMonitor } from '../../src/inbound/load-monitor.js'

test('each sample is reported once per connection; no connection (unknown) always gets it', () => {
  // Samples only when the test takes one.
  const monitor = new LoadMonitor({ sampleIntervalMs: 3_600_000, maxEventLoopDelayMs: 3_600_000 })
  try {
    const a = {}
    const b = {}
    assert.equal(monitor.reportOn(a), monitor.header, 'a connection\'s first answer carries the load')
    assert.equal(monitor.reportOn(a), undefined, 'not again within the same sample')
    assert.equal(monitor.reportOn(b), monitor.header, 'another connection hears it on its own first answer')
    assert.equal(monitor.reportOn(undefined), monitor.header, 'without a connection to remember, always')
    monitor.sample()
    assert.match(monitor.reportOn(a) ?? '', /^\d\.\d{2}$/, 'a new sample reaches the connection again')
    assert.equal(monitor.reportOn(a), undefined)
    assert.notEqual(monitor.reportOn(b), undefined)
  } finally {
    monitor.close()
  }
})

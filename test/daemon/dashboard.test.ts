import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { applyPolicy, call, openWatch, register } from '../helpers/daemon.js'
import { controlMesh, PAYMENTS_NO_RETRIES } from '../helpers/control-kit.js'
import { launchChromium } from '../helpers/chromium.js'
import { startCliDaemon } from '../cli/kit.js'

// The page's globals, for the functions Playwright runs inside Chromium (the project compiles without the DOM lib).
declare const document: any
declare const window: any
declare const sessionStorage: any

const XSS = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'

test('the dashboard in a real Chromium: the token is asked for (a wrong one refused), then instances, a NACK with markup shown as text, and live traffic; strict CSP, no script error', async (t) => {
  const d = await startCliDaemon({ leaseTtlMs: 1_500 })
  t.after(() => d.close())
  assert.equal((await applyPolicy(d, PAYMENTS_NO_RETRIES)).status, 200)
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  await payments.listen(http.createServer((_req, res) => res.end('ok')), { port: 0, host: '127.0.0.1', route: () => '/ok' })
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  for (let i = 0; i < 200; i++) {
    const r = await checkout.request('http://payments/ok').catch(() => undefined)
    await r?.body.text()
    if (r?.statusCode === 200 && i >= 20) break
  }
  // An instance whose NACK carries markup: an instance's text must never run in the admin's browser.
  const evil = await register(d, { service: 'reports' })
  // Watching (and answering pings), so the 1.5 s lease keeps it registered.
  const watch = await openWatch(d.url, evil.id, evil.token)
  t.after(() => watch.close())
  assert.equal((await call(d.url, 'POST', `/v1/instances/${evil.id}/ack`, evil.token, { version: 1, error: XSS })).status, 200)

  const browser = await launchChromium()
  t.after(() => browser.close())
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (m) => void (m.type() === 'error' && problems.push(`console: ${m.text()}`)))

  const res = await page.goto(`${d.url}/dashboard`)
  assert.equal(res?.status(), 200)
  const headers = res!.headers()
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'/)
  assert.equal(headers['x-frame-options'], 'DENY')
  assert.equal(await page.isVisible('#login'), true, 'no token yet: the page asks for one')
  assert.equal(await page.isVisible('#board'), false)

  await page.fill('#token', 'not-the-token')
  await page.click('#signin')
  await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('refused the token'))
  assert.equal(await page.isVisible('#login'), true)
  assert.equal(await page.evaluate(() => sessionStorage.getItem('weft-admin-token')), null)

  await page.fill('#token', d.adminToken)
  await page.click('#signin')
  // The traffic reaches the daemon with the next heartbeats (every 500 ms here).
  await page.waitForFunction(() => [...document.querySelectorAll('#served tbody tr')].some((tr: any) => tr.textContent.startsWith('payments')), undefined, { timeout: 10_000 })
  assert.equal(await page.isVisible('#login'), false, 'signed in: the token form is gone')
  const rows = async (id: string) => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)))
  const served = (await rows('served')).find((r) => r[0] === 'payments')!
  assert.deepEqual(served.slice(1, 3), ['1', 'http'])
  assert.equal(served[4], '100.00%')
  const route = (await rows('routes')).find((r) => r[0] === 'payments')!
  assert.deepEqual(route.slice(1, 4), ['/ok', '1', 'http'])
  await page.waitForFunction(() => [...document.querySelectorAll('#calls tbody tr')].some((tr: any) => tr.textContent.startsWith('checkoutpayments')), undefined, { timeout: 10_000 })
  const instances = await rows('instances')
  const byService = (s: string) => instances.find((r) => r[1] === s)
  assert.equal(byService('checkout')?.[4], 'SYNCED')
  assert.equal(byService('payments')?.[4], 'SYNCED')
  assert.equal(byService('reports')?.[4], 'NACKED')
  assert.match(await page.textContent('#summary') ?? '', /^daemon version \d+ · 3 instances, 2 synced$/)

  // The policy history: the version applied above, newest first.
  const history = await rows('history')
  assert.match(history[0]!.join(' | '), /^\d+ \| \d+s ago \| apply \| .*Service\/payments/)

  // The NACK's markup is text on the page: no element made from it, nothing run.
  assert.equal(await page.textContent('#nacks pre'), XSS)
  assert.equal(await page.$$eval('#nacks img, #nacks script', (els) => els.length), 0)
  assert.equal(await page.evaluate(() => window.__pwned), undefined)

  // The token stays for this tab across a reload; "Forget the token" drops it.
  await page.reload()
  await page.waitForFunction(() => Number(document.body.dataset.loaded ?? 0) >= 1)
  assert.equal(await page.isVisible('#board'), true)
  await page.click('#signout')
  assert.equal(await page.isVisible('#login'), true)
  assert.equal(await page.isVisible('#board'), false)
  assert.equal(await page.evaluate(() => sessionStorage.getItem('weft-admin-token')), null)

  assert.deepEqual(problems.filter((p) => !p.includes('401')), [], 'no script error and no CSP violation')
})

test('the dashboard with more instances than it draws: at most 500 rows, NACKED before DISCONNECTED, and a note saying so', async (t) => {
  const d = await startCliDaemon()
  t.after(() => d.close())
  const ids: string[] = []
  for (let i = 0; i < 502; i++) ids.push((await register(d, { service: 'bulk' })).id)
  const odd = await register(d, { service: 'odd' })
  // Watching: a NACKED state is only shown for a connected instance (else DISCONNECTED).
  const watch = await openWatch(d.url, odd.id, odd.token)
  t.after(() => watch.close())
  assert.equal((await call(d.url, 'POST', `/v1/instances/${odd.id}/ack`, odd.token, { version: 1, error: 'bad view' })).status, 200)
  const browser = await launchChromium()
  t.after(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`${d.url}/dashboard`)
  await page.fill('#token', d.adminToken)
  await page.click('#signin')
  await page.waitForFunction(() => Number(document.body.dataset.loaded ?? 0) >= 1)
  const rows = await page.$$eval('#instances tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)))
  assert.equal(rows.length, 500)
  assert.deepEqual([rows[0]![0], rows[0]![4]], [odd.id, 'NACKED'], 'the NACKed instance comes first')
  assert.equal(await page.textContent('#instances-note'), 'showing 500 of 503 (NACKED, STALE and DISCONNECTED first); weft status lists every one')
  assert.match(await page.textContent('#summary') ?? '', /· 503 instances, 0 synced$/)
})

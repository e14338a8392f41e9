// The dashboard's script, sent to the browser as is (plain JS in a string: the project compiles
// for Node, without the DOM's types; test/daemon/dashboard.test.ts runs it in a real Chromium).
// It keeps the admin token in sessionStorage (this tab only), polls GET /v1/status, /v1/top and
// /v1/history every 2 s, and writes every value with textContent, never as HTML: service names, instance ids
// and NACK errors come from instances, which must not be able to run script in an admin's browser.

export const DASHBOARD_JS = `'use strict'
;(() => {
  const KEY = 'weft-admin-token'
  const MAX_ROWS = 500
  const MAX_NACKS = 20
  const $ = (id) => document.getElementById(id)
  let timer
  let inFlight = false

  function cell(tr, text, cls) {
    const td = document.createElement('td')
    td.textContent = text
    if (cls) td.className = cls
    tr.appendChild(td)
    return td
  }

  function fill(tableId, rows, empty) {
    const body = $(tableId).tBodies[0]
    body.replaceChildren()
    if (rows.length === 0) {
      const tr = document.createElement('tr')
      const td = cell(tr, empty, 'empty')
      td.colSpan = $(tableId).tHead.rows[0].cells.length
      body.appendChild(tr)
      return
    }
    for (const row of rows) {
      const tr = document.createElement('tr')
      for (const c of row) typeof c === 'string' ? cell(tr, c) : cell(tr, c.text, c.cls)
      body.appendChild(tr)
    }
  }

  const named = (service, ns) => (ns && ns !== 'default' ? service + '.' + ns : service)
  const pct = (s) => (s.successRate === null ? '-' : (Math.floor(s.successRate * 10000) / 100).toFixed(2) + '%')
  const ms = (v) => (v === null ? '-' : v < 10 ? v.toFixed(2) + 'ms' : v < 1000 ? v.toFixed(1) + 'ms' : (v / 1000).toFixed(2) + 's')
  const num = (text) => ({ text, cls: 'num' })
  const stats = (s) => [s.proto, num(s.rps.toFixed(1)), { text: pct(s), cls: s.successRate !== null && s.successRate < 0.99 ? 'num low' : 'num' }, num(ms(s.p50Ms)), num(ms(s.p95Ms)), num(ms(s.p99Ms))]

  function ago(at) {
    const t = typeof at === 'number' ? at : Date.parse(at)
    if (!Number.isFinite(t)) return '-'
    const s = Math.max(0, Math.round((Date.now() - t) / 1000))
    return s < 120 ? s + 's ago' : s < 7200 ? Math.round(s / 60) + 'm ago' : Math.round(s / 3600) + 'h ago'
  }

  async function get(path, token) {
    const res = await fetch(path, { headers: { authorization: 'Bearer ' + token }, cache: 'no-store' })
    const body = await res.json().catch(() => ({}))
    if (!res.ok) {
      const err = new Error((body.error && body.error.message) || res.status + ' ' + res.statusText)
      err.status = res.status
      throw err
    }
    return body
  }

  function renderTop(top) {
    const covered = top.coveredMs < top.windowMs ? ' (' + Math.round(top.coveredMs / 1000) + ' s of it since the daemon started)' : ''
    $('traffic-note').textContent = top.instances + ' instance' + (top.instances === 1 ? '' : 's') + ' reporting over the last ' + top.windowMs / 1000 + ' s' + covered + '; instances report with each heartbeat.'
    fill('served', top.services.map((s) => [named(s.service, s.namespace), num(String(s.instances)), ...stats(s)]), 'no traffic served in this window')
    fill('routes', (top.routes || []).map((r) => [named(r.service, r.namespace), r.route === '' ? '-' : r.route, num(String(r.instances)), ...stats(r)]), 'no traffic served in this window')
    fill('calls', top.edges.map((e) => [named(e.from, e.namespace), e.to, num(String(e.instances)), ...stats(e)]), 'no calls in this window')
  }

  function renderStatus(st) {
    const all = st.instances
    const synced = all.filter((i) => i.state === 'SYNCED').length
    $('summary').textContent = 'daemon version ' + st.version + ' · ' + all.length + ' instance' + (all.length === 1 ? '' : 's') + ', ' + synced + ' synced'
    // The ones needing a look first (NACKED, STALE or keeping a dropped policy, then DISCONNECTED),
    // and at most MAX_ROWS: 10,000 rows redrawn every 2 s help nobody; weft status lists them all.
    const RANK = { NACKED: 0, STALE: 1, DISCONNECTED: 2, ELSEWHERE: 3, SYNCED: 4 }
    const rank = (i) => (i.keptDeleted && i.keptDeleted.length > 0 ? 1 : RANK[i.state] ?? 2)
    const list = all.map((i, at) => ({ i, at })).sort((a, b) => rank(a.i) - rank(b.i) || a.at - b.at).slice(0, MAX_ROWS).map((x) => x.i)
    $('instances-note').textContent = all.length > list.length ? 'showing ' + list.length + ' of ' + all.length + ' (NACKED, STALE and DISCONNECTED first); weft status lists every one' : ''
    fill('instances', list.map((i) => [
      i.id,
      named(i.service, i.namespace),
      i.address === undefined ? '-' : (i.address.includes(':') ? '[' + i.address + ']' : i.address) + ':' + i.port,
      i.ackedVersion === undefined || i.ackedVersion === null ? '-' : String(i.ackedVersion),
      { text: i.state + (i.keptDeleted && i.keptDeleted.length ? ', KEEPS ' + i.keptDeleted.length : ''), cls: 'state-' + String(i.state).replace(/[^A-Z]/g, '') },
      i.control || '-',
      ago(i.lastSeen),
    ]), 'no instances registered')
    const nacks = $('nacks')
    nacks.replaceChildren()
    let shown = 0
    for (const i of all) {
      if (!i.nack) continue
      if (++shown > MAX_NACKS) {
        const more = document.createElement('p')
        more.className = 'note'
        more.textContent = 'more NACKs not shown; weft status prints every one'
        nacks.append(more)
        break
      }
      const h = document.createElement('h3')
      h.className = 'error'
      h.textContent = i.id + ' refused version ' + i.nack.version + ' (NACK):'
      const pre = document.createElement('pre')
      pre.textContent = i.nack.error
      nacks.append(h, pre)
    }
    fill('revocations', (st.revocations || []).map((r) => [r.spiffeId, ago(r.revokedAt), r.reason || '']), 'none')
  }

  function renderHistory(h) {
    const newest = [...(h.entries || [])].sort((a, b) => b.version - a.version).slice(0, 10)
    fill('history', newest.map((e) => [num(String(e.version)), ago(e.at), e.action, e.summary]), 'no policy applied yet')
  }

  async function refresh() {
    const token = sessionStorage.getItem(KEY)
    if (!token || inFlight) return
    inFlight = true
    try {
      const [st, top, hist] = await Promise.all([get('/v1/status', token), get('/v1/top?window=' + $('window').value, token), get('/v1/history', token)])
      renderStatus(st)
      renderTop(top)
      renderHistory(hist)
      $('error').textContent = ''
      $('refreshed').textContent = 'updated ' + new Date().toLocaleTimeString()
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1)
    } catch (err) {
      if (err.status === 401 || err.status === 403) return signOut('The daemon refused the token: ' + err.message)
      $('error').textContent = 'Could not reach the daemon: ' + err.message + ' (retrying)'
    } finally {
      inFlight = false
    }
  }

  function signOut(why) {
    clearInterval(timer)
    sessionStorage.removeItem(KEY)
    $('board').hidden = true
    $('login').hidden = false
    $('login-error').textContent = why || ''
    $('token').focus()
  }

  function signIn() {
    $('login').hidden = true
    $('board').hidden = false
    clearInterval(timer)
    timer = setInterval(refresh, 2000)
    void refresh()
  }

  $('login').addEventListener('submit', (e) => {
    e.preventDefault()
    const token = $('token').value.trim()
    if (!token) return
    sessionStorage.setItem(KEY, token)
    $('token').value = ''
    signIn()
  })
  $('signout').addEventListener('click', () => signOut(''))
  $('window').addEventListener('change', () => void refresh())
  if (sessionStorage.getItem(KEY)) signIn()
  else signOut('')
})()
`

// The dashboard's page and style: static text with no data in it (the script fetches the data
// with the admin token the user types), so serving it needs no credential. Served with a strict
// Content-Security-Policy (serve.ts): no inline script or style, no other origin.

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Weft</title>
<link rel="stylesheet" href="/dashboard/style.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>Weft</h1>
  <span id="summary"></span>
  <span id="refreshed"></span>
</header>
<form id="login" hidden>
  <label for="token">Admin token <small>(the daemon's admin.token; kept in this tab only)</small></label>
  <input id="token" type="password" autocomplete="off" spellcheck="false">
  <button id="signin" type="submit">Show</button>
  <p id="login-error" class="error" role="alert"></p>
</form>
<main id="board" hidden>
  <p id="error" class="error" role="alert"></p>
  <section>
    <h2>Traffic <select id="window" aria-label="window"><option value="10">last 10 s</option><option value="30" selected>last 30 s</option><option value="60">last 60 s</option></select></h2>
    <p id="traffic-note" class="note"></p>
    <h3>Served <small>as each service's instances saw it</small></h3>
    <table id="served"><thead><tr><th>Service</th><th>Instances</th><th>Proto</th><th>RPS</th><th>Success</th><th>P50</th><th>P95</th><th>P99</th></tr></thead><tbody></tbody></table>
    <h3>Served per route <small>HTTP: the route template the app matched (- for none); gRPC: the method</small></h3>
    <table id="routes"><thead><tr><th>Service</th><th>Route</th><th>Instances</th><th>Proto</th><th>RPS</th><th>Success</th><th>P50</th><th>P95</th><th>P99</th></tr></thead><tbody></tbody></table>
    <h3>Calls <small>as the callers saw them, mesh failures included</small></h3>
    <table id="calls"><thead><tr><th>From</th><th>To</th><th>Instances</th><th>Proto</th><th>RPS</th><th>Success</th><th>P50</th><th>P95</th><th>P99</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Instances</h2>
    <p id="instances-note" class="note"></p>
    <table id="instances"><thead><tr><th>Instance</th><th>Service</th><th>Address</th><th>Version</th><th>State</th><th>Control</th><th>Last seen</th></tr></thead><tbody></tbody></table>
    <div id="nacks"></div>
  </section>
  <section>
    <h2>Policy history <small>the last 10 versions; weft history lists them all, weft rollback VERSION goes back</small></h2>
    <table id="history"><thead><tr><th>Version</th><th>When</th><th>Action</th><th>Summary</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Revoked identities</h2>
    <table id="revocations"><thead><tr><th>Identity</th><th>Since</th><th>Reason</th></tr></thead><tbody></tbody></table>
  </section>
  <p><button id="signout" type="button">Forget the token</button></p>
</main>
</body>
</html>
`

export const DASHBOARD_CSS = `
[hidden] { display: none !important; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #1d2330; }
header { display: flex; gap: 1.5rem; align-items: baseline; border-bottom: 1px solid #d8dce4; }
h1 { font-size: 1.4rem; margin: .6rem 0; }
h2 { font-size: 1.1rem; margin-top: 1.6rem; }
h3 { font-size: .95rem; margin: 1rem 0 .3rem; }
small, .note, #refreshed { color: #5b6475; font-weight: normal; }
table { border-collapse: collapse; min-width: 40rem; }
th, td { text-align: left; padding: .2rem .8rem .2rem 0; border-bottom: 1px solid #eef0f4; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
#history td:last-child { white-space: normal; }
td.empty { color: #5b6475; font-style: italic; }
.state-SYNCED { color: #17743a; }
.state-STALE, .state-DISCONNECTED, .state-ELSEWHERE { color: #8a5a00; }
.state-NACKED, .error, .low { color: #b3261e; }
pre { background: #f6f7f9; padding: .5rem; white-space: pre-wrap; max-width: 60rem; }
form { margin-top: 2rem; display: flex; flex-direction: column; gap: .5rem; max-width: 28rem; }
`

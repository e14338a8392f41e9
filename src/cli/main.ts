#!/usr/bin/env node
// The `weft` command: the control daemon and the commands that talk to it over its HTTP+JSON API
// (docs/design/control-plan.md), plus `weft check`, which is offline, and `weft sidecar`. Each command is its own
// file; this one dispatches and turns failures into exit codes: 2 for usage, 1 for the rest.
import { UsageError, CliError } from './args.js'

const USAGE = `usage: weft <command> [flags]

commands:
  daemon [--listen HOST:PORT] [--admin-listen HOST:PORT] [--data-dir DIR] [--etcd URL,…]
         [--lease-ttl 10s] [--trust-domain TD] [--svid-ttl 24h]
         [--ca-cert F --ca-key F [--ca-bundle F]]
                             run the control daemon (and its CA) until SIGINT/SIGTERM;
                             --admin-listen takes admin calls apart (refused on --listen)
  apply -f FILE [--dry-run]  validate FILE, then upsert its resources; prints what changed
  delete KIND NAME [-n NS]   remove one policy resource
  get services|endpoints|policies|instances [-o table|json|yaml]
                             (get policies -o yaml prints a file weft apply takes back)
  status [-o …]              every instance: config version, SYNCED/STALE/NACKED, last seen
  top [-w 30s] [--routes] [--once] [--interval 2s] [-o …]
                             live traffic per service (--routes: per route too) and per
                             caller → callee: requests/s, success rate, p50/p95/p99 latency
                             (from the instances' heartbeats)
  history [-o …]             policy versions, newest first
  rollback VERSION           make the policy of VERSION the current one (a new version)
  explain --from SERVICE URL [-H 'name: value']… [-X METHOD] [-o …]
                             which rule, endpoints and settings a request from SERVICE gets
  token create [--service S]… [-n NS]
                             a join token for instances
  ca bundle|rotate|retire    the CA's trust bundle; rotate adds a new signing root (instances
                             re-issue onto it), retire drops the old one
  jwt keys|rotate|retire [--force]
                             the JWT-SVID signing keys; rotate publishes a new key beside the
                             old one, retire drops the old one
  revoke SERVICE|SPIFFE-ID [-n NS] --reason TEXT
                             revoke one identity: instances end its mTLS connections and
                             refuse new ones, the CA signs nothing for it
  revoke --list | revocations [-o …]
                             the identities revoked, why and since when
  unrevoke SERVICE|SPIFFE-ID [-n NS]
                             lift a revocation
  sidecar --service S --app HOST:PORT [-n NS] [--inbound HOST:PORT] [--outbound HOST:PORT|off]
          [--admin HOST:PORT|off] [--config FILE | --control URL --token T] [--label k=v]…
          [--state-dir DIR] [--drain-timeout 10s] [--advertise HOST] [--access-log all|errors]
          [--route /users/:id]…
                             the mesh for an application that is not Node, as a local proxy:
                             callers reach it on --inbound (default 0.0.0.0:15006: mTLS, authz,
                             metrics), it calls services through --outbound (default
                             127.0.0.1:15001; HTTP_PROXY or Host: <service>); health and metrics
                             on --admin (default 127.0.0.1:15020); --advertise: the address
                             the inbound listener registers as (default 127.0.0.1); --access-log:
                             a JSON line per request on stdout; SIGTERM drains
  check -f FILE [-f FILE…]   validate policy files offline; exit 1 when any has errors
                             (-o yaml: print the Weft resources they stand for, SMI and
                             Gateway API resources translated)
  version                    print the version
  help                       this text

daemon address and admin token: --control URL / --token T, else the files of --data-dir DIR
(daemon.json — its admin listener when it has one —, admin.token), else WEFT_CONTROL / WEFT_TOKEN,
else the files of ./.weft-daemon.
exit status: 0 ok, 1 failed (daemon unreachable, refused, invalid policy), 2 usage error.`

type Command = (argv: readonly string[]) => number | Promise<number>

// Loaded on use: `weft check` never loads undici, `weft get` never loads the daemon.
const COMMANDS: Record<string, () => Promise<Command>> = {
  daemon: async () => (await import('./daemon.js')).daemon,
  apply: async () => (await import('./apply.js')).apply,
  delete: async () => (await import('./delete.js')).del,
  get: async () => (await import('./get.js')).get,
  status: async () => (await import('./status.js')).status,
  top: async () => (await import('./top.js')).top,
  history: async () => (await import('./history.js')).history,
  rollback: async () => (await import('./history.js')).rollback,
  explain: async () => (await import('./explain.js')).explainCommand,
  token: async () => (await import('./token.js')).token,
  ca: async () => (await import('./ca.js')).ca,
  jwt: async () => (await import('./jwt.js')).jwt,
  revoke: async () => (await import('./revoke.js')).revoke,
  unrevoke: async () => (await import('./revoke.js')).unrevoke,
  revocations: async () => (await import('./revoke.js')).revocations,
  check: async () => (await import('./check.js')).check,
  sidecar: async () => (await import('./sidecar.js')).sidecar,
}

async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  if (cmd === 'version' || cmd === '--version') {
    process.stdout.write('weft 0.1.0\n')
    return 0
  }
  const load = COMMANDS[cmd]
  if (!load) {
    process.stderr.write(`weft: unknown command "${cmd}"\n${USAGE}\n`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  try {
    return await (await load())(rest)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n(weft help for usage)\n`)
      return 2
    }
    if (err instanceof CliError) {
      process.stderr.write(err.message + '\n')
      return err.exitCode
    }
    throw err
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`weft: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = 1
  },
)

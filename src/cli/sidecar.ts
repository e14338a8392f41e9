// `weft sidecar`: runs src/sidecar for one application until SIGINT/SIGTERM, then drains (the
// inbound side as mesh.close() does) and exits 0. One line on stdout says where everything is, so
// a supervisor or a test can read the ports it got (port 0 picks a free one).
import { startSidecar, type HostPort } from '../sidecar/index.js'
import { routeTemplates } from '../sidecar/route-templates.js'
import { formatHostPort } from '../util/host-port.js'
import { parseDuration } from '../util/duration.js'
import { consoleLogger } from '../util/logger.js'
import type { MeshOptions } from '../options.js'
import { CliError, parseArgs, UsageError } from './args.js'
import { untilSignal } from './signals.js'

function hostPort(flag: string, value: string, defaultHost: string): HostPort {
  // A bare port is on the flag's default host.
  const text = /^\d{1,5}$/.test(value) ? `${defaultHost}:${value}` : value
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/[\]]+)):(\d{1,5})$/.exec(text)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new UsageError(`weft sidecar: --${flag} must be HOST:PORT or PORT, with a port from 0 to 65535 (got "${value}")`)
  return { host: m[1] ?? m[2]!, port }
}

export async function sidecar(argv: readonly string[]): Promise<number> {
  const args = parseArgs('sidecar', argv, {
    service: { kind: 'string' },
    namespace: { kind: 'string', short: 'n' },
    app: { kind: 'string' },
    inbound: { kind: 'string' },
    outbound: { kind: 'string' },
    admin: { kind: 'string' },
    config: { kind: 'string', short: 'f' },
    control: { kind: 'string' },
    token: { kind: 'string' },
    'state-dir': { kind: 'string' },
    'drain-timeout': { kind: 'string' },
    label: { kind: 'list' },
    advertise: { kind: 'string' },
    'access-log': { kind: 'string' },
    route: { kind: 'list' },
  })
  if (args.positional.length > 0) throw new UsageError(`weft sidecar: unexpected argument ${args.positional[0]}`)
  const service = args.strings.service
  if (!service) throw new UsageError('weft sidecar: --service NAME is required (the application\'s service name)')
  if (!args.strings.app) throw new UsageError('weft sidecar: --app HOST:PORT (or PORT) is required: where the application listens')
  const app = hostPort('app', args.strings.app, '127.0.0.1')
  if (app.port === 0) throw new UsageError('weft sidecar: --app needs the port the application listens on, not 0')
  const inbound = hostPort('inbound', args.strings.inbound ?? '0.0.0.0:15006', '0.0.0.0')
  const outbound = args.strings.outbound === 'off' ? false : hostPort('outbound', args.strings.outbound ?? '127.0.0.1:15001', '127.0.0.1')
  const admin = args.strings.admin === 'off' ? undefined : hostPort('admin', args.strings.admin ?? '127.0.0.1:15020', '127.0.0.1')
  let drainTimeoutMs: number | undefined
  if (args.strings['drain-timeout'] !== undefined) {
    drainTimeoutMs = parseDuration(args.strings['drain-timeout'])
    if (drainTimeoutMs === undefined) throw new UsageError(`weft sidecar: --drain-timeout must be a duration like 10s (got "${args.strings['drain-timeout']}")`)
  }
  const labels: Record<string, string> = {}
  for (const l of args.lists.label ?? []) {
    const eq = l.indexOf('=')
    if (eq <= 0) throw new UsageError(`weft sidecar: --label must be key=value (got "${l}")`)
    labels[l.slice(0, eq)] = l.slice(eq + 1)
  }
  const accessLog = args.strings['access-log'] ?? 'off'
  if (!['all', 'errors', 'off'].includes(accessLog)) throw new UsageError(`weft sidecar: --access-log must be all, errors or off (got "${accessLog}")`)
  try {
    routeTemplates(args.lists.route ?? [], '--route')
  } catch (err) {
    throw new UsageError(`weft sidecar: ${(err as Error).message}`)
  }
  if (args.strings.config !== undefined && args.strings.control !== undefined) throw new UsageError('weft sidecar: --config (a static policy file) and --control (a daemon) are two ways to get config; give one')

  const mesh: MeshOptions = {
    service,
    logger: consoleLogger,
    ...(args.strings.namespace !== undefined ? { namespace: args.strings.namespace } : {}),
    ...(args.strings.config !== undefined ? { config: args.strings.config } : {}),
    ...(args.strings.control !== undefined ? { control: args.strings.control } : {}),
    ...(args.strings.token !== undefined ? { token: args.strings.token } : {}),
    ...(args.strings['state-dir'] !== undefined ? { stateDir: args.strings['state-dir'] } : {}),
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    // One JSON line per request on stdout, both directions (the line above them says where things are).
    ...(accessLog !== 'off' ? { accessLog: { errorsOnly: accessLog === 'errors' } } : {}),
    // The inbound listener on 0.0.0.0 registers as this address (default 127.0.0.1).
    ...(args.strings.advertise !== undefined ? { advertiseAddress: args.strings.advertise } : {}),
    // The app owns its paths: health and metrics go on the admin listener, never on the inbound port.
    inbound: { health: admin ? { port: admin.port, host: admin.host } : false, ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}) },
  }
  let running
  try {
    running = await startSidecar({ mesh, app: { host: app.host!, port: app.port }, inbound, outbound, routes: args.lists.route ?? [] })
  } catch (err) {
    throw new CliError(`weft sidecar: cannot start: ${(err as Error).message}`)
  }
  const s = running
  const at = (a: { address: string; port: number }) => formatHostPort(a.address, a.port)
  const adminAt = s.mesh.adminAddress
  process.stdout.write(`weft sidecar: ${service} inbound ${at(s.inbound)} -> app ${formatHostPort(app.host!, app.port)}` +
    (s.outbound ? `; outbound proxy ${at(s.outbound)} (HTTP_PROXY=http://${at(s.outbound)})` : '') +
    (adminAt ? `; admin ${at(adminAt)} (/healthz /readyz /metrics)` : '') + '\n')
  await untilSignal('sidecar', 'draining')
  await s.close()
  return 0
}

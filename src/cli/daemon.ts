// `weft daemon`: runs the control daemon in this process until SIGINT/SIGTERM, then closes it
// (watch streams end, the store is flushed) and exits 0. The daemon prints the admin and join
// tokens itself, once, at its first start, and writes <data dir>/daemon.json for the other commands.
import { readFileSync } from 'node:fs'
import { parseListen, startDaemon } from '../daemon/index.js'
import { parseDuration } from '../util/duration.js'
import { consoleLogger } from '../util/logger.js'
import { CliError, parseArgs, UsageError } from './args.js'
import { DEFAULT_DATA_DIR } from './client.js'
import { createEtcdStoreForCli } from './etcd.js'
import { untilSignal } from './signals.js'

export async function daemon(argv: readonly string[]): Promise<number> {
  const args = parseArgs('daemon', argv, {
    listen: { kind: 'string' },
    'admin-listen': { kind: 'string' },
    'data-dir': { kind: 'string' },
    etcd: { kind: 'string' },
    'lease-ttl': { kind: 'string' },
    'trust-domain': { kind: 'string' },
    'svid-ttl': { kind: 'string' },
    'ca-cert': { kind: 'string' },
    'ca-key': { kind: 'string' },
    'ca-bundle': { kind: 'string' },
  })
  if (args.positional.length > 0) throw new UsageError(`weft daemon: unexpected argument ${args.positional[0]}`)
  const listen = args.strings.listen ?? '127.0.0.1:7070'
  try {
    parseListen(listen)
  } catch {
    throw new UsageError(`weft daemon: --listen must be host:port, port 0 for any free one (got "${listen}")`)
  }
  const adminListen = args.strings['admin-listen']
  if (adminListen !== undefined) {
    try {
      parseListen(adminListen)
    } catch {
      throw new UsageError(`weft daemon: --admin-listen must be host:port, port 0 for any free one (got "${adminListen}")`)
    }
  }
  let leaseTtlMs: number | undefined
  if (args.strings['lease-ttl'] !== undefined) {
    leaseTtlMs = parseDuration(args.strings['lease-ttl'])
    if (leaseTtlMs === undefined || leaseTtlMs < 1000) throw new UsageError(`weft daemon: --lease-ttl must be a duration of at least 1s, like 10s (got "${args.strings['lease-ttl']}")`)
  }
  let svidTtlMs: number | undefined
  if (args.strings['svid-ttl'] !== undefined) {
    svidTtlMs = parseDuration(args.strings['svid-ttl'])
    if (svidTtlMs === undefined || svidTtlMs < 1000) throw new UsageError(`weft daemon: --svid-ttl must be a duration of at least 1s, like 24h (got "${args.strings['svid-ttl']}")`)
  }
  const trustDomain = args.strings['trust-domain']
  if (trustDomain !== undefined && !/^[a-z0-9._-]{1,255}$/.test(trustDomain)) throw new UsageError(`weft daemon: --trust-domain must be lowercase letters, digits, ".", "-" and "_" (got "${trustDomain}")`)
  const caFiles = { cert: args.strings['ca-cert'], key: args.strings['ca-key'], bundle: args.strings['ca-bundle'] }
  if ((caFiles.cert === undefined) !== (caFiles.key === undefined)) throw new UsageError('weft daemon: --ca-cert and --ca-key go together')
  if (caFiles.bundle !== undefined && caFiles.cert === undefined) throw new UsageError('weft daemon: --ca-bundle needs --ca-cert and --ca-key')
  let ca: { certPem: string; keyPem: string; bundlePem?: string } | undefined
  if (caFiles.cert !== undefined) {
    const read = (f: string, what: string) => {
      try {
        return readFileSync(f, 'utf8')
      } catch (err) {
        throw new CliError(`weft daemon: cannot read ${what} ${f}: ${(err as Error).message}`)
      }
    }
    ca = { certPem: read(caFiles.cert, '--ca-cert'), keyPem: read(caFiles.key!, '--ca-key'), ...(caFiles.bundle !== undefined ? { bundlePem: read(caFiles.bundle, '--ca-bundle') } : {}) }
  }
  const etcd = args.strings.etcd?.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (etcd !== undefined && etcd.length === 0) throw new UsageError('weft daemon: --etcd needs URL[,URL…]')

  const store = etcd ? await createEtcdStoreForCli({ endpoints: etcd, leaseTtlMs, logger: consoleLogger }) : undefined
  let running
  try {
    running = await startDaemon({
      listen,
      ...(adminListen !== undefined ? { adminListen } : {}),
      dataDir: args.strings['data-dir'] ?? DEFAULT_DATA_DIR,
      store,
      leaseTtlMs,
      ...(trustDomain !== undefined ? { trustDomain } : {}),
      ...(svidTtlMs !== undefined ? { svidTtlMs } : {}),
      ...(ca ? { ca } : {}),
      logger: consoleLogger,
      print: (line) => void process.stdout.write(line + '\n'),
    })
  } catch (err) {
    await store?.close().catch(() => {})
    throw new CliError(`weft daemon: cannot start: ${(err as Error).message}`)
  }
  const d = running
  await untilSignal('daemon', 'closing')
  await d.close()
  return 0
}

// A control daemon in a process of its own, for the control-plane bench: its memory is then its
// own. Started with a data dir; sends { url } over IPC once listening; answers { mem: true } with
// process.memoryUsage() after a full GC (run with --expose-gc), and { stop: true } by exiting.
import { startDaemon } from '../../src/daemon/index.js'

const dataDir = process.argv[2]!
const daemon = await startDaemon({ listen: '127.0.0.1:0', dataDir, leaseTtlMs: 60_000, print: () => {}, logger: { info() {}, warn() {}, error() {} } })
// Never outlive the bench: the IPC channel closes when the parent exits, however it exits.
process.on('disconnect', () => process.exit(0))
process.on('message', (m: { mem?: boolean; stop?: boolean }) => {
  if (m.mem) {
    globalThis.gc?.()
    globalThis.gc?.()
    process.send!({ mem: process.memoryUsage() })
  }
  if (m.stop) void daemon.close().finally(() => process.exit(0))
})
process.send!({ url: daemon.url })

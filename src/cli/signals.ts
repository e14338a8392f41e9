// The end of a long-running command (`weft daemon`, `weft sidecar`): the first SIGINT or SIGTERM
// starts a clean close; a second one while closing gives up on it.

/** Resolves at the first SIGINT/SIGTERM, after writing "weft <command>: <signal>, <doing>". */
export function untilSignal(command: string, doing: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      process.stderr.write(`weft ${command}: ${signal}, ${doing}\n`)
      process.once('SIGINT', () => process.exit(130))
      process.once('SIGTERM', () => process.exit(143))
      resolve()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}

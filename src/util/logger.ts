// The logger contract: injected per mesh; the default writes one line per event to stderr.

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

function line(level: string, msg: string, fields?: Record<string, unknown>): string {
  return `weft ${level}: ${msg}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}\n`
}

export const consoleLogger: Logger = {
  info: (msg, fields) => void process.stderr.write(line('info', msg, fields)),
  warn: (msg, fields) => void process.stderr.write(line('warn', msg, fields)),
  error: (msg, fields) => void process.stderr.write(line('error', msg, fields)),
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} }

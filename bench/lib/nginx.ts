// Runs nginx for the benches: one instance per temp dir (its config, pid file, logs and temp paths
// all inside it), in the foreground on a loopback port, its CPU read from /proc (master + workers).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { delimiter, join } from 'node:path'

export const NGINX_INSTALL_HINT =
  'install it with `sudo apt-get install -y nginx` (Debian/Ubuntu; .ci/run does this in CI) or `brew install nginx` (macOS); ' +
  'the bench runs its own instances on loopback ports, the system service need not run'

/** The nginx binary (PATH, then the usual sbin dirs), or an error saying how to install it. */
export function findNginx(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/opt/homebrew/bin']
  for (const d of dirs) if (d && existsSync(join(d, 'nginx'))) return join(d, 'nginx')
  throw new Error(`nginx is not installed, and the sidecar scenario measures two nginx sidecars: ${NGINX_INSTALL_HINT}`)
}

/** The version `nginx -v` prints, e.g. "1.22.1". */
export function nginxVersion(): string {
  const r = spawnSync(findNginx(), ['-v'], { encoding: 'utf8' })
  return /nginx\/([\w.]+)/.exec(`${r.stderr}${r.stdout}`)?.[1] ?? 'unknown'
}

/** A port free on 127.0.0.1 right now (nginx cannot listen on port 0 and report what it got). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

let ticks: number | undefined
/** Clock ticks per second of /proc's utime/stime (USER_HZ, 100 almost everywhere). */
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticks = 100
    }
  }
  return ticks
}

/** Parent pid and user + system CPU ticks of `pid`, or undefined once it is gone. */
function procStat(pid: number): { ppid: number; ticks: number } | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // Fields after the command name, which is in parentheses and may hold spaces: state is [0],
  // ppid [1], utime [11], stime [12] (proc(5) fields 3, 4, 14, 15).
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) }
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => procStat(p)?.ppid === pid)
}

export interface Nginx {
  port: number
  /** The master, then its worker(s). */
  pids: number[]
  /** CPU (user + system) of the master and workers so far, µs; 10 ms resolution (clock ticks). */
  cpuMicros(): number
  /** The end of its error log, to explain a failure. */
  logTail(): string
  stop(): Promise<void>
}

/**
 * Starts nginx with the config `conf(port)` written to `dir`/nginx.conf, on a free loopback port
 * (another one if that port was taken meanwhile), and resolves once it accepts connections and its
 * worker is up. Throws with the error log when nginx does not start.
 */
export async function startNginx(dir: string, conf: (port: number) => string): Promise<Nginx> {
  const bin = findNginx()
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      return await launch(bin, dir, port, conf(port))
    } catch (err) {
      if (attempt >= 3 || !/in use/.test(String(err))) throw err
    }
  }
}

// nginx runs under a watchdog shell that waits on its stdin: when this process ends, however it
// ends (even SIGKILL from run.ts on an overrun), the pipe closes and the shell stops nginx —
// nginx's workers would otherwise outlive a killed master. It prints nginx's pid first.
const WATCHDOG = '"$0" -p "$1/" -c "$1/nginx.conf" -e "$1/error.log" & echo $!; read line; kill -TERM $! 2>/dev/null; wait'

async function launch(bin: string, dir: string, port: number, text: string): Promise<Nginx> {
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  writeFileSync(join(dir, 'nginx.conf'), text)
  writeFileSync(join(dir, 'error.log'), '')
  const sh = spawn('/bin/sh', ['-c', WATCHDOG, bin, dir], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<void>((resolve) => sh.once('exit', () => resolve()))
  const stopShell = async (): Promise<void> => {
    sh.stdin!.end()
    const t = setTimeout(() => sh.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(t)
  }
  const master = await new Promise<number>((resolve, reject) => {
    sh.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim().split('\n')[0])))
    sh.once('exit', () => reject(new Error('the nginx watchdog shell exited before printing a pid')))
  })
  sh.stdout!.resume()
  const log = () => readFileSync(join(dir, 'error.log'), 'utf8').trim().slice(-2_000)
  let workers: number[] = []
  try {
    const deadline = Date.now() + 10_000
    for (;;) {
      if (!procStat(master)) throw new Error(`nginx exited at start (${join(dir, 'nginx.conf')}): ${log() || '(empty error log)'}`)
      if (await accepts(port)) {
        workers = childrenOf(master)
        if (workers.length > 0) break
      }
      if (Date.now() > deadline) throw new Error(`nginx did not accept on 127.0.0.1:${port} within 10 s: ${log()}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  } catch (err) {
    await stopShell()
    throw err
  }
  const pids = [master, ...workers]
  return {
    port,
    pids,
    cpuMicros: () => {
      let sum = 0
      for (const pid of pids) {
        const s = procStat(pid)
        // A worker that died (and was replaced by the master) would make the sums wrong: fail.
        if (!s) throw new Error(`nginx process ${pid} (port ${port}) is gone: ${log()}`)
        sum += s.ticks
      }
      return (sum * 1e6) / clockTicks()
    },
    logTail: log,
    stop: async () => {
      await stopShell()
      // The shell waited for nginx; should it have been killed instead, no nginx process stays.
      for (const pid of pids) if (procStat(pid)) process.kill(pid, 'SIGKILL')
    },
  }
}

/** Whether a TCP connection to 127.0.0.1:`port` opens. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

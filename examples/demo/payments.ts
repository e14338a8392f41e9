// One payments instance, run as its own process by fleet.ts: a Fastify 5 app with its own mesh
// (service "payments") and the weft plugin, on 127.0.0.1:0. It reports its port over IPC, counts
// what it answers per phase, busy-loops its event loop in the busy phase if it is the busy one,
// and exits as soon as the parent goes away.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { weftPlugin } from '../../adapters/fastify/index.js'
import { createMesh } from '../../src/index.js'
import { BUSY, PHASES, type FromChild, type InstanceSpec, type Phase, type PhaseCounts, type ToChild } from './instances.js'

if (!process.send) {
  console.error('examples/demo/payments.ts is started by the demo (npm run demo), not on its own')
  process.exit(2)
}
// The IPC channel closes when the parent exits, however it exits: nothing here outlives the demo.
process.on('disconnect', () => process.exit(0))
// Ctrl-C reaches the whole process group; the demo decides when this instance stops (it asks for
// its counts first), so SIGINT is left to the parent.
process.on('SIGINT', () => {})
const send = (m: FromChild, then?: () => void): void => void process.send?.(m, undefined, {}, () => then?.())

const spec = JSON.parse(process.argv[2] ?? '{}') as InstanceSpec
const counts: PhaseCounts[] = PHASES.map(() => ({ answered: 0, failed: 0, loadSum: 0 }))
let phase: Phase = 0
let busy: NodeJS.Timeout | undefined

function setPhase(p: Phase): void {
  phase = p
  if (spec.cpuBusy && p === 1 && !busy) {
    busy = setInterval(() => {
      const until = performance.now() + BUSY.blockMs
      while (performance.now() < until) {
        // CPU-bound work: nothing else on this event loop runs meanwhile.
      }
    }, BUSY.everyMs)
  } else if (p !== 1 && busy) {
    clearInterval(busy)
    busy = undefined
  }
}

const mesh = await createMesh({
  service: 'payments',
  logger: { info: () => {}, warn: (m) => console.error(`payments ${spec.name}: ${m}`), error: (m) => console.error(`payments ${spec.name}: ${m}`) },
})
const app = Fastify()
await app.register(weftPlugin, { mesh })

// The charge itself: 1–4 ms of "work"; the failing instance answers failRate of them with 503.
app.post('/charge', async (request, reply) => {
  const c = counts[phase]!
  c.answered++
  // The plugin set weft-load (this process's event-loop load) before the handler ran.
  c.loadSum += Number(reply.getHeader('weft-load') ?? 0)
  await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 3))
  void reply.header('x-served-by', spec.name)
  if (Math.random() < spec.failRate) {
    c.failed++
    return reply.code(503).send({ error: 'payments unavailable' })
  }
  // What arrived with the call, though checkout's handler forwarded no header: its trace, the
  // caller chain and the deadline the client gave checkout, less the time spent so far.
  const ctx = request.weft
  return {
    ok: true,
    servedBy: spec.name,
    version: spec.version,
    traceId: ctx?.traceId,
    caller: request.headers['weft-caller'],
    deadlineLeftMs: ctx && Number.isFinite(ctx.deadline) ? Math.round(ctx.remainingMs()) : null,
  }
})

await app.listen({ port: 0, host: '127.0.0.1' })
process.on('message', (m: ToChild) => {
  if (m.type === 'phase') setPhase(m.phase)
  else if (m.type === 'stop') void stop()
})
send({ type: 'ready', port: (app.server.address() as AddressInfo).port })

async function stop(): Promise<void> {
  setPhase(2)
  await mesh.close()
  await app.close()
  send({ type: 'stats', phases: counts }, () => process.disconnect())
}

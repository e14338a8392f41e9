// One payments instance, run as its own process by fleet.ts: a Fastify 5 app with its own mesh
// (service "payments", registered with the control daemon, which tells it about the gRPC service
// "ledger") and the weft plugin, on 127.0.0.1:0.
// Each charge is posted to the ledger with a mesh.grpc.client before it is answered. It reports its
// port over IPC, counts what it answers per phase, busy-loops its event loop in the busy phase if
// it is the busy one, and exits as soon as the parent goes away.
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { weftPlugin } from '../../adapters/fastify/index.js'
import { createMesh } from '../../src/index.js'
import { BUSY, PHASES, type ControlInfo, type FromChild, type InstanceSpec, type Phase, type PhaseCounts, type ToChild } from './instances.js'
import { LedgerClient, post, type LedgerApi, type Receipt } from './ledger.js'

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
const control = JSON.parse(process.argv[3] ?? '{}') as ControlInfo
const counts: PhaseCounts[] = PHASES.map(() => ({ answered: 0, failed: 0, ledgerFailed: 0, loadSum: 0 }))
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

// Its policy (the ledger Service) and the ledger's endpoints come from the daemon; its labels make
// it a member of the route's subsets once it registers.
const mesh = await createMesh({
  service: 'payments',
  control: control.url,
  token: control.token,
  labels: { version: spec.version, zone: spec.zone },
  locality: { zone: spec.zone },
  logger: { info: () => {}, warn: (m) => console.error(`payments ${spec.name}: ${m}`), error: (m) => console.error(`payments ${spec.name}: ${m}`) },
})
// A plain grpc-js client; the mesh routes, balances and retries each call.
const ledger = mesh.grpc.client(LedgerClient, 'ledger') as unknown as LedgerApi
const app = Fastify()
await app.register(weftPlugin, { mesh })

// The charge itself: 1–4 ms of "work" (the failing instance answers failRate of them with 503),
// then the entry posted to the ledger.
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
  // The charge goes in the ledger before it is confirmed. No metadata and no deadline here: the
  // mesh sends this request's trace, caller chain and remaining deadline with the gRPC call.
  const { cart, amount, currency } = (request.body ?? {}) as { cart?: string; amount?: number; currency?: string }
  let receipt: Receipt
  try {
    receipt = await post(ledger, { cart: String(cart), amount: Number(amount) || 0, currency: String(currency), payments: spec.name })
  } catch (err) {
    c.failed++
    c.ledgerFailed++
    return reply.code(503).send({ error: `ledger: ${(err as Error).message}` })
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
    ledger: receipt.ledger,
    // The trace id the ledger's handler ran under, for checkout to compare with its own.
    ledgerTraceId: receipt.traceId,
  }
})

await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port
// Fastify listened on its own: tell the daemon where this instance serves.
await mesh.register({ port, host: '127.0.0.1' })
process.on('message', (m: ToChild) => {
  if (m.type === 'phase') setPhase(m.phase)
  else if (m.type === 'stop') void stop()
})
send({ type: 'ready', port })

async function stop(): Promise<void> {
  setPhase(2)
  // This process's side of the ledger hop, for the summary: its gRPC client histogram and retries
  // (checkout has stopped by now, so no charge is in flight).
  const text = await mesh.metrics()
  const ledgerMetrics = text.split('\n').filter((l) => /^(rpc_client_duration_seconds|weft_retries_total|weft_retry_budget_exhausted_total|weft_endpoint_ejections_total)\S*\{[^}]*destination_service="ledger"/.test(l)).join('\n')
  ledger.close()
  await mesh.close()
  await app.close()
  send({ type: 'stats', phases: counts, ledgerMetrics }, () => process.disconnect())
}

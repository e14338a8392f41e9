// The mesh policy the demo applies through the daemon: Services "payments" and "ledger" (their
// endpoints come from the registry: every instance registers itself), the route for payments —
// all to v1 at first, then the 90/10 canary, applied mid-run — and identity: STRICT mTLS between
// the services, checkout's edge PERMISSIVE, payments accepting only checkout, ledger only payments.
export const CANARY = { v1: 90, v2: 10 } as const
/** When the canary route is applied, as a fraction of the run. */
export const CANARY_AT = 0.3
/**
 * Outlier detection, tuned so a 10 s run shows an ejection now and then without taking v1-a out
 * for most of it (with 3 in a row, 20 % failures eject it every few hundred requests, and then
 * every v1 request lands on the other v1 instance whatever its load).
 */
export const OUTLIER = { consecutive5xx: 5, baseEjectionTime: '250ms', maxEjectionTime: '500ms' } as const

const route = (backends: { subset: Record<string, string>; weight: number }[]): object => ({
  apiVersion: 'weft/v1',
  kind: 'Route',
  metadata: { name: 'payments-canary' },
  spec: { service: 'payments', rules: [{ name: 'canary', backends }] },
})

/** The policy at start: the two services, and every payments request to v1. */
export function meshPolicy(): object[] {
  return [
    {
      apiVersion: 'weft/v1',
      kind: 'Service',
      metadata: { name: 'payments' },
      spec: {
        timeout: '2s',
        // Defaults everywhere else: P2C peak-EWMA balancing (which also weighs the weft-load each
        // instance reports), retries: 2 on connect-failure/reset/502/503/504 within a 20 % budget.
        outlierDetection: OUTLIER,
      },
    },
    {
      apiVersion: 'weft/v1',
      kind: 'Service',
      metadata: { name: 'ledger' },
      // Defaults otherwise: P2C peak-EWMA, and retries: 2 on UNAVAILABLE, before any answer
      // arrived, within a 20 % budget.
      spec: { protocol: 'grpc', outlierDetection: OUTLIER },
    },
    route([{ subset: { version: 'v1' }, weight: 100 }]),
    // Identity: under the daemon every hop is mTLS with SPIFFE IDs (MeshConfig's default STRICT).
    // checkout is the edge: the demo's plain HTTP client reaches it in plaintext, so PERMISSIVE.
    { apiVersion: 'weft/v1', kind: 'PeerAuthentication', metadata: { name: 'checkout-edge' }, spec: { service: 'checkout', mtls: 'PERMISSIVE' } },
    allowOnly('payments', 'checkout'),
    allowOnly('ledger', 'payments'),
  ]
}

/** An AuthorizationPolicy: `service` accepts calls only from workload `caller` (by its certificate). */
function allowOnly(service: string, caller: string): object {
  return {
    apiVersion: 'weft/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: `${service}-allow-${caller}` },
    spec: { service, action: 'ALLOW', rules: [{ from: [{ principals: [`spiffe://weft.local/ns/default/sa/${caller}`] }] }] },
  }
}

/** The canary: the same route, now 90/10 between v1 and v2. */
export function canaryRoute(): object[] {
  return [route([{ subset: { version: 'v1' }, weight: CANARY.v1 }, { subset: { version: 'v2' }, weight: CANARY.v2 }])]
}

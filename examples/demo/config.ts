// checkout's mesh config: a Service "payments" (the three instance processes) and a 90/10 canary Route.
import type { Instance } from './fleet.js'

export const CANARY = { v1: 90, v2: 10 } as const
/**
 * Outlier detection, tuned so a 10 s run shows an ejection now and then without taking v1-a out
 * for most of it (with 3 in a row, 20 % failures eject it every few hundred requests, and then
 * every v1 request lands on the other v1 instance whatever its load).
 */
export const OUTLIER = { consecutive5xx: 5, baseEjectionTime: '250ms', maxEjectionTime: '500ms' } as const

export function checkoutConfig(instances: readonly Instance[]): object[] {
  return [
    {
      apiVersion: 'weft/v1',
      kind: 'Service',
      metadata: { name: 'payments' },
      spec: {
        endpoints: instances.map((i) => ({ address: i.address, labels: { version: i.version, zone: i.zone } })),
        timeout: '2s',
        // Defaults everywhere else: P2C peak-EWMA balancing (which also weighs the weft-load each
        // instance reports), retries: 2 on connect-failure/reset/502/503/504 within a 20 % budget.
        outlierDetection: OUTLIER,
      },
    },
    {
      apiVersion: 'weft/v1',
      kind: 'Route',
      metadata: { name: 'payments-canary' },
      spec: {
        service: 'payments',
        rules: [
          {
            name: 'canary',
            backends: [
              { subset: { version: 'v1' }, weight: CANARY.v1 },
              { subset: { version: 'v2' }, weight: CANARY.v2 },
            ],
          },
        ],
      },
    },
  ]
}

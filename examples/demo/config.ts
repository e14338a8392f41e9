// The demo's mesh config: a Service "payments" (the three instances) and a 90/10 canary Route.
import type { Instance } from './servers.js'

export const CANARY = { v1: 90, v2: 10 } as const

export function meshConfig(instances: readonly Instance[]): object[] {
  return [
    {
      apiVersion: 'weft/v1',
      kind: 'Service',
      metadata: { name: 'payments' },
      spec: {
        endpoints: instances.map((i) => ({ address: i.address, labels: { version: i.version, zone: i.zone } })),
        timeout: '2s',
        // Defaults everywhere else (retries: 2 on connect-failure/reset/502/503/504, within a 20 % budget).
        // Outlier detection is tuned so a 10 s demo shows an ejection and a return.
        outlierDetection: { consecutive5xx: 3, baseEjectionTime: '2s' },
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

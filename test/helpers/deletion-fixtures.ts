// The policy the F5 deletion tests (test/daemon/deletions*.test.ts) apply, delete and move around.
export const AP_KEY = 'AuthorizationPolicy/default/payments-from-web'

export const SERVICE = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: 2s }
`

/** Only web may call `service` (payments unless moved). */
export const AP = (service = 'payments') => `apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-from-web }
spec:
  service: ${service}
  action: ALLOW
  rules: [{ from: [{ principals: ["spiffe://weft.local/ns/default/sa/web"] }] }]
`

// The Route the HTTP client scenarios give the Service `bench`: a POST /admin/ rule the requests do
// not match (so each request is matched against two rules) and an /api/ rule with `apiBackends`.
type Backend = { subset: Record<string, string>; weight?: number }

export function benchRoute(adminBackends: Backend[], apiBackends: Backend[]) {
  return {
    apiVersion: 'weft/v1',
    kind: 'Route',
    metadata: { name: 'bench' },
    spec: {
      service: 'bench',
      rules: [
        { name: 'admin', matches: [{ path: { prefix: '/admin/' }, methods: ['POST'] }], backends: adminBackends },
        { name: 'api', matches: [{ path: { prefix: '/api/' } }], backends: apiBackends },
      ],
    },
  }
}

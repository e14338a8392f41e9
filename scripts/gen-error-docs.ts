// Writes docs/errors.md from the one error table (src/errors/codes.ts); a test keeps them in sync.
import { writeFileSync } from 'node:fs'
import { ERROR_TABLE, GrpcStatus } from '../src/errors/codes.js'

const grpcName = (n: number) => Object.entries(GrpcStatus).find(([, v]) => v === n)?.[0] ?? String(n)

export function renderErrorDocs(): string {
  const rows = Object.entries(ERROR_TABLE).map(([code, s]) => `| \`${code}\` | ${s.http} | ${grpcName(s.grpc)} (${s.grpc}) | ${s.retryable ? 'yes' : 'no'} | ${s.advice} |`)
  return `# Weft errors

Every failure the mesh itself generates is a \`WeftError\` with a stable \`code\`, the HTTP status and
gRPC status below, whether another attempt may succeed (\`retryable\`), a \`cause\` when something
underneath failed, and \`details\` that say which rule fired: service, route rule, attempts made,
endpoints tried, breaker state, config version, and the reason retries stopped.

Outbound, the error rejects \`mesh.request()\` (and \`mesh.fetch()\`, as the \`cause\` of fetch's
\`TypeError: fetch failed\`). A response the mesh makes itself (fault injection) carries the code in
a \`weft-error-code\` header and a JSON body \`{ "error": { "code", "message" } }\`.

This page is generated from \`src/errors/codes.ts\` by \`node --import tsx scripts/gen-error-docs.ts\`.

| code | HTTP | gRPC | retryable | what to do |
|---|---|---|---|---|
${rows.join('\n')}

## Config findings

Validation findings (from \`weft check -f FILE\`, a watched config file, or \`createMesh\`) have their
own codes: \`WEFT_E_*\` are errors (the config is refused and the previous version keeps serving),
\`WEFT_W_*\` are warnings (reported, config applied). Each names the resource (\`Kind/name\`), the
field path and, for files, \`file:line:column\`.

| code | meaning |
|---|---|
| \`WEFT_E_SYNTAX\` | the YAML/JSON does not parse |
| \`WEFT_E_FILE_UNREADABLE\` | the config file cannot be read |
| \`WEFT_E_FIELD_UNKNOWN\` | a field this version does not know (never silently dropped) |
| \`WEFT_E_FIELD_REQUIRED\` | a required field is missing |
| \`WEFT_E_FIELD_INVALID\` | a field has the wrong type or an out-of-range value |
| \`WEFT_E_KIND_UNKNOWN\` | a resource kind (or an SMI / Gateway API version) this version does not understand |
| \`WEFT_E_DUPLICATE\` | two resources (or endpoints) with the same name |
| \`WEFT_E_REF_UNKNOWN\` | a Route (or a rule's \`mirror\`) names a service with no Service resource; an SMI resource names an HTTPRouteGroup (or a match) that does not exist |
| \`WEFT_E_REGEX_INVALID\` | a regular expression does not compile |
| \`WEFT_E_REGEX_UNSAFE\` | a regular expression with nested quantifiers (catastrophic backtracking) |
| \`WEFT_W_ROUTE_SHADOWED\` | a Route rule can never match: an earlier rule matches everything it matches |
| \`WEFT_W_SUBSET_EMPTY\` | a backend (or mirror) subset selects no endpoint of the service |
| \`WEFT_E_TRANSLATE_UNSUPPORTED\` | a field of an SMI / Gateway API resource Weft cannot honour (a filter other than RequestMirror, a Gateway parent, \`timeouts: 0s\`, a TrafficTarget regex that is not a path prefix, …) |
| \`WEFT_W_TRANSLATE_IGNORED\` | a field of an SMI / Gateway API resource that has no effect in the mesh (\`hostnames\` on a Service parent, a repeated header match) |
| \`WEFT_W_MIRROR_GRPC\` | a rule's \`mirror\` on a gRPC service: only HTTP requests are mirrored, gRPC calls are not |
`
}

if (import.meta.url === `file://${process.argv[1]}`) writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorDocs())

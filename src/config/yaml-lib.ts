// The yaml package, loaded on first use: only text (a policy file, `weft apply`, the daemon's
// store) needs it. A mesh configured with objects or by a daemon's views never parses YAML, and
// loading yaml up front cost every process ~1 MB of RSS (with jose's, ~2.5 MB; measured with all
// of Weft's dependencies loaded). yaml resolves to the same CommonJS build for require and import
// under node, so require() here gives the module an `import` would.
import { createRequire } from 'node:module'
import type * as Yaml from 'yaml'

let lib: typeof Yaml | undefined

export function yamlLib(): typeof Yaml {
  return (lib ??= createRequire(import.meta.url)('yaml') as typeof Yaml)
}

import { defineConfig } from 'tsup'

// ESM only: tsup's CJS output duplicates shared module state per entry (STYLE.md).
export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts', express: 'adapters/express/index.ts', fastify: 'adapters/fastify/index.ts' },
  // Optional peers and their plugin helper stay imports, never bundled.
  external: ['express', 'fastify', 'fastify-plugin', 'etcd3'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
})

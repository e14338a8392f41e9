import { defineConfig } from 'tsup'

// ESM only: tsup's CJS output duplicates shared module state per entry (STYLE.md).
export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
})

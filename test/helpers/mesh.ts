// Test helpers: build resources and a quiet mesh whose log lines are captured.
import { createMesh, type Mesh } from '../../src/index.js'
import type { Logger } from '../../src/util/logger.js'

export interface CapturingLogger extends Logger {
  lines: string[]
}

export function capturingLogger(): CapturingLogger {
  const lines: string[] = []
  return {
    lines,
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
  }
}

export function service(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'weft/v1', kind: 'Service', metadata: { name }, spec }
}

export function route(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'weft/v1', kind: 'Route', metadata: { name }, spec }
}

export async function quietMesh(config: unknown, extra: Record<string, unknown> = {}): Promise<Mesh & { log: CapturingLogger }> {
  const log = capturingLogger()
  const mesh = await createMesh({ service: 'checkout', config: config as object, logger: log, ...extra })
  return Object.assign(mesh, { log })
}

/** Reads a counter/gauge sample value from Prometheus text (sums matching series). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

// An OpenTelemetry SDK tracer whose finished spans are kept in memory, for the tests that check
// what a mesh records and propagates. shutdown() in the test's cleanup.
import type { Tracer } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type Sampler } from '@opentelemetry/sdk-trace-base'

export interface MemoryTracing {
  exporter: InMemorySpanExporter
  tracer: Tracer
  shutdown(): Promise<void>
}

/** The SDK's default sampler (parent-based, always on for roots) unless `sampler` is given. */
export function memoryTracing(sampler?: Sampler): MemoryTracing {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ ...(sampler ? { sampler } : {}), spanProcessors: [new SimpleSpanProcessor(exporter)] })
  return { exporter, tracer: provider.getTracer('test'), shutdown: () => provider.shutdown() }
}

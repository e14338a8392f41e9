// The V8 sampling profiler (what --cpu-prof uses) on this process, started and stopped from code,
// so a scenario profiles only its measured phase, not start-up or warm-up.
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'

/** Starts profiling at a 250 µs interval; the returned function stops and writes the .cpuprofile to `file`. */
export async function startCpuProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 250 })
  await session.post('Profiler.start')
  return async (file) => {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
  }
}

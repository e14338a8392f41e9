// Tiny async mutual exclusion. The daemon runs in one event loop, but its operations await the
// store between reading and writing (read policy → validate → write with CAS; read an instance →
// attach it): two requests interleaving there would lose one change. These queues order them.

/** Runs tasks one at a time, in call order; a failing task does not stop the queue. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task)
    this.tail = result.catch(() => {})
    return result
  }

  /** Resolves when everything queued so far has finished. */
  idle(): Promise<void> {
    return this.tail.then(() => {})
  }
}

/** One Serial per key (an instance id), dropped when its queue empties so ids do not accumulate. */
export class KeyedSerial {
  private readonly queues = new Map<string, { serial: Serial; pending: number }>()

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let q = this.queues.get(key)
    if (!q) this.queues.set(key, (q = { serial: new Serial(), pending: 0 }))
    q.pending++
    try {
      return await q.serial.run(task)
    } finally {
      if (--q.pending === 0) this.queues.delete(key)
    }
  }
}

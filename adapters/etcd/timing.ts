// Small timing helpers shared by the etcd store's parts.

export const sleep = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms))

/** `p`, or a rejection after `ms`. */
export function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

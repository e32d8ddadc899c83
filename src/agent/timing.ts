/** Backoff and poll-wait arithmetic, pure so tests can drive it with a fixed `random`. */

export const BACKOFF_BASE_MS = 1000
export const BACKOFF_CAP_MS = 5 * 60_000
export const DEFAULT_INTERVAL_MS = 60 * 60_000
/** A Retry-After beyond this is treated as this: a bogus header must not park the agent for days. */
export const RETRY_AFTER_CAP_MS = 60 * 60_000

export type Random = () => number

/**
 * Exponential backoff with full jitter: the ceiling doubles per consecutive failure from
 * 1 s up to 5 min, and the delay is uniform in [0, ceiling) so many agents hit by the same
 * outage do not retry in lockstep. A server's Retry-After is a floor.
 * `failures` counts consecutive failures including this one (1 for the first).
 */
export function backoffDelay (failures: number, random: Random, retryAfterMs?: number): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30))
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** exponent)
  const jittered = Math.floor(random() * ceiling)
  if (retryAfterMs === undefined) return jittered
  return Math.max(jittered, Math.min(retryAfterMs, RETRY_AFTER_CAP_MS))
}

/** The steady-state wait, jittered ±10% to spread a fleet's polls. */
export function pollDelay (intervalMs: number, random: Random): number {
  return Math.round(intervalMs * (0.9 + 0.2 * random()))
}

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects: stopping is not an error). */
export const abortableSleep: Sleep = (ms, signal) => new Promise((resolve) => {
  if (signal.aborted) return resolve()
  const timer = setTimeout(done, ms)
  function done (): void {
    clearTimeout(timer)
    signal.removeEventListener('abort', done)
    resolve()
  }
  signal.addEventListener('abort', done, { once: true })
})

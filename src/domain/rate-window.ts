/**
 * Fixed-window request counting, the rule behind the spec endpoints' per-license limit. A
 * window opens at a key's first request and lasts `windowMs`; within it at most `limit`
 * requests pass. The caller keeps one RateWindow per key (see SpecRateLimiter): this module
 * only decides, so the hot path pays for two integer comparisons and no lookup of its own.
 */

export interface RatePolicy {
  /** Requests allowed per window; at least 1. */
  limit: number
  windowMs: number
}

export interface RateWindow {
  /** When the current window opened (ms since the epoch). */
  start: number
  /** Requests counted in the current window, refused ones included. */
  count: number
}

export function openWindow (now: number): RateWindow {
  return { start: now, count: 0 }
}

/**
 * Counts one request against the window (opening a new window when the old one has passed).
 * Returns 0 when the request may pass, otherwise the whole seconds until the window closes,
 * at least 1 (the Retry-After value).
 */
export function countRequest (window: RateWindow, policy: RatePolicy, now: number): number {
  if (now - window.start >= policy.windowMs) {
    window.start = now
    window.count = 0
  }
  window.count++
  return window.count <= policy.limit ? 0 : secondsLeft(window, policy, now)
}

/**
 * Without counting: the seconds until the window closes when it has already used its limit,
 * else 0. For limits on an outcome (counted afterwards) rather than on every request.
 */
export function exhaustedFor (window: RateWindow, policy: RatePolicy, now: number): number {
  if (now - window.start >= policy.windowMs || window.count < policy.limit) return 0
  return secondsLeft(window, policy, now)
}

/** Whole seconds until the window closes, at least 1 (a Retry-After value). */
function secondsLeft (window: RateWindow, policy: RatePolicy, now: number): number {
  return Math.max(1, Math.ceil((window.start + policy.windowMs - now) / 1000))
}

/** Whether a window is over, so a store may forget it. */
export function windowExpired (window: RateWindow, policy: RatePolicy, now: number): boolean {
  return now - window.start >= policy.windowMs
}

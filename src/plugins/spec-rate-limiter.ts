/**
 * The per-license limit on the spec endpoints (RATE_LIMIT_SPEC per RATE_LIMIT_WINDOW).
 *
 * Not @fastify/rate-limit (which still guards the publisher API): its onRequest hook awaits a
 * key generator and a store callback on every request, and on the spec hot path that cost ~15%
 * of the throughput (bench/README.md). Here the window hangs off the verified license itself,
 * in a WeakMap keyed by the claims object the verifier caches per token: no key string, no LRU,
 * no promise, and a window is forgotten together with its token.
 */
import { ChartcastError } from '../errors.js'
import { countRequest, openWindow, windowExpired, type RatePolicy, type RateWindow } from '../domain/rate-window.js'

/** Anonymous pulls (ANONYMOUS_CHANNEL) are counted per client address; this bounds that table. */
const MAX_ADDRESSES = 100_000

export class SpecRateLimiter {
  private readonly byLicense = new WeakMap<object, RateWindow>()
  private readonly byAddress = new Map<string, RateWindow>()

  constructor (private readonly policy: RatePolicy, private readonly now: () => number = Date.now) {
    if (!(policy.limit >= 1) || !(policy.windowMs > 0)) throw new Error('rate limit needs limit >= 1 and a positive window')
  }

  /** Counts a pull by a verified license (its cached claims object); throws RATE_LIMITED over the limit. */
  countLicense (license: object): void {
    const now = this.now()
    let window = this.byLicense.get(license)
    if (window === undefined) {
      window = openWindow(now)
      this.byLicense.set(license, window)
    }
    this.check(countRequest(window, this.policy, now))
  }

  /** Counts an unauthenticated pull by client address. */
  countAddress (address: string): void {
    const now = this.now()
    let window = this.byAddress.get(address)
    if (window === undefined) {
      if (this.byAddress.size >= MAX_ADDRESSES) this.forgetAddresses(now)
      window = openWindow(now)
      this.byAddress.set(address, window)
    }
    this.check(countRequest(window, this.policy, now))
  }

  get trackedAddresses (): number {
    return this.byAddress.size
  }

  private check (retryAfterSeconds: number): void {
    if (retryAfterSeconds === 0) return
    const seconds = String(retryAfterSeconds)
    throw new ChartcastError('RATE_LIMITED', `more than ${this.policy.limit} spec pulls in the current window; retry after the time in Retry-After`, {
      'retry-after': seconds,
      'x-ratelimit-limit': String(this.policy.limit),
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': seconds
    })
  }

  /** Drops expired windows; if the table is still full, the oldest-inserted ones (a flood of addresses). */
  private forgetAddresses (now: number): void {
    for (const [address, window] of this.byAddress) {
      if (windowExpired(window, this.policy, now)) this.byAddress.delete(address)
    }
    for (const address of this.byAddress.keys()) {
      if (this.byAddress.size < MAX_ADDRESSES) break
      this.byAddress.delete(address)
    }
  }
}

/**
 * Rate limits on the spec endpoints, in memory and synchronous.
 *
 * Not @fastify/rate-limit (which still guards the publisher API): its onRequest hook awaits a
 * key generator and a store callback on every request, and on the spec hot path that cost ~15%
 * of the throughput (bench/README.md). Here a license's window hangs off the verified license
 * itself, in a WeakMap keyed by the claims object the verifier caches per token: no key string,
 * no LRU, no promise, and a window is forgotten together with its token.
 */
import { ChartcastError } from '../errors.js'
import { countRequest, exhaustedFor, openWindow, windowExpired, type RatePolicy, type RateWindow } from '../domain/rate-window.js'

/** Bounds each per-address table (a flood of addresses cannot grow it further). */
const MAX_ADDRESSES = 100_000

function rateLimited (detail: string, limit: number, retryAfterSeconds: number): ChartcastError {
  const seconds = String(retryAfterSeconds)
  return new ChartcastError('RATE_LIMITED', `${detail}; retry after the time in Retry-After`, {
    'retry-after': seconds,
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': seconds
  })
}

/** Fixed windows per client address, in a bounded table. */
class AddressWindows {
  private readonly windows = new Map<string, RateWindow>()

  constructor (private readonly policy: RatePolicy, private readonly now: () => number) {
    if (!(policy.limit >= 1) || !(policy.windowMs > 0)) throw new Error('rate limit needs limit >= 1 and a positive window')
  }

  get size (): number {
    return this.windows.size
  }

  /** Counts one event; the Retry-After seconds when that went over the limit, else 0. */
  count (address: string): number {
    const now = this.now()
    let window = this.windows.get(address)
    if (window === undefined) {
      if (this.windows.size >= MAX_ADDRESSES) this.forget(now)
      window = openWindow(now)
      this.windows.set(address, window)
    }
    return countRequest(window, this.policy, now)
  }

  /** The Retry-After seconds when the address has used up its window, else 0 (counts nothing). */
  exhausted (address: string): number {
    const window = this.windows.get(address)
    return window === undefined ? 0 : exhaustedFor(window, this.policy, this.now())
  }

  /** Drops expired windows; if the table is still full, the oldest-inserted ones. */
  private forget (now: number): void {
    for (const [address, window] of this.windows) {
      if (windowExpired(window, this.policy, now)) this.windows.delete(address)
    }
    for (const address of this.windows.keys()) {
      if (this.windows.size < MAX_ADDRESSES) break
      this.windows.delete(address)
    }
  }
}

/** Spec pulls per license (RATE_LIMIT_SPEC per RATE_LIMIT_WINDOW); anonymous pulls per address. */
export class SpecRateLimiter {
  private readonly byLicense = new WeakMap<object, RateWindow>()
  private readonly byAddress: AddressWindows

  constructor (private readonly policy: RatePolicy, private readonly now: () => number = Date.now) {
    this.byAddress = new AddressWindows(policy, now)
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
    this.check(this.byAddress.count(address))
  }

  get trackedAddresses (): number {
    return this.byAddress.size
  }

  private check (retryAfterSeconds: number): void {
    if (retryAfterSeconds !== 0) throw rateLimited(`more than ${this.policy.limit} spec pulls in the current window`, this.policy.limit, retryAfterSeconds)
  }
}

/**
 * RATE_LIMIT_LICENSE_FAILURES: a token seen for the first time costs a signature verification
 * (~0.2 ms for ES256), and anyone can make up new tokens. An address whose new tokens failed
 * verification this many times in a window gets 429 for further new tokens, without a
 * verification, until the window ends. Licenses already verified are served as before.
 * Off by default: it keys on the client address, which behind a proxy without TRUST_PROXY is
 * the proxy's for everyone.
 */
export class InvalidLicenseGuard {
  private readonly failures: AddressWindows

  constructor (private readonly policy: RatePolicy, now: () => number = Date.now) {
    this.failures = new AddressWindows(policy, now)
  }

  /** Before verifying a new token from this address. */
  check (address: string): void {
    const retryAfterSeconds = this.failures.exhausted(address)
    if (retryAfterSeconds !== 0) throw rateLimited(`${this.policy.limit} invalid licenses from this address in the current window`, this.policy.limit, retryAfterSeconds)
  }

  /** A new token from this address failed verification. */
  failed (address: string): void {
    this.failures.count(address)
  }
}

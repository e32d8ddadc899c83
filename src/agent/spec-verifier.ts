/**
 * The agent's verifier with --trust-root: holds the newest keyset it has followed from the trust
 * root, fetches the chain from `GET {server}/keys` when it has none, when an answer names a kid
 * it does not know (an online key rotation) and when its keyset has expired, and checks each
 * answer (src/agent/verify.ts). Trust only moves forward: a later chain is followed from the
 * keyset already trusted, so a served chain can never take it back to an older keyset.
 */
import { anchorFromKeyset, followKeysetChain, KeysetError, parseKeysetChain, type Keyset, type TrustAnchor } from '../domain/keyset.js'
import { BodyTooLargeError, readBodyCapped, type FetchLike } from './client.js'
import { DEFAULT_MAX_BODY_BYTES } from './options.js'
import { errorMessage } from './errors.js'
import { verifySpecAnswer, type AnswerExpectation, type SignedAnswer, type VerifyFailure, type VerifyResult } from './verify.js'

/** What the reconciler needs: one call per answer. */
export interface AnswerVerifier {
  verify (answer: SignedAnswer, expect: Omit<AnswerExpectation, 'nowMs'>, signal?: AbortSignal): Promise<VerifyResult>
}

export interface SpecVerifierOptions {
  trust: TrustAnchor
  /** The server base URL (`/keys` is resolved against it); absent for files and bundles. */
  server?: string
  /** A chain to start from instead of fetching one (e.g. from a bundle). */
  chain?: Keyset[]
  fetch?: FetchLike
  now?: () => number
  timeoutMs?: number
  /** Largest `/keys` body read (--max-body); a larger one is refused while it streams. */
  maxBodyBytes?: number
}

export class SpecVerifier implements AnswerVerifier {
  private trusted: Keyset | null
  private readonly keysUrl: string | null
  private readonly fetchFn: FetchLike
  private readonly now: () => number
  private readonly timeoutMs: number
  private readonly initialChain: Keyset[] | null

  constructor (private readonly opts: SpecVerifierOptions) {
    this.trusted = opts.trust.keyset
    this.keysUrl = opts.server === undefined ? null : new URL('keys', opts.server.endsWith('/') ? opts.server : `${opts.server}/`).toString()
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init))
    this.now = opts.now ?? Date.now
    this.timeoutMs = opts.timeoutMs ?? 30_000
    this.initialChain = opts.chain ?? null
  }

  /** The keyset answers are verified against now (null before the first chain was followed). */
  get keyset (): Keyset | null {
    return this.trusted
  }

  async verify (answer: SignedAnswer, expect: Omit<AnswerExpectation, 'nowMs'>, signal?: AbortSignal): Promise<VerifyResult> {
    const nowMs = this.now()
    let refreshed = false
    if (this.trusted === null || Date.parse(this.trusted.signed.expires) <= nowMs) {
      const failure = await this.refresh(signal)
      if (failure !== null) return failure
      refreshed = true
    }
    let result = await verifySpecAnswer(answer, this.trusted!, { ...expect, nowMs })
    // A kid this keyset does not list may be an online key added since: follow the chain once more.
    if (!result.ok && result.check === 'unknown-kid' && !refreshed && this.keysUrl !== null) {
      const failure = await this.refresh(signal)
      if (failure !== null) return failure
      result = await verifySpecAnswer(answer, this.trusted!, { ...expect, nowMs })
    }
    return result
  }

  /** Follows the served (or given) chain from what is trusted; null when that worked. */
  private async refresh (signal?: AbortSignal): Promise<VerifyFailure | null> {
    let chain: Keyset[]
    if (this.keysUrl === null) {
      if (this.initialChain === null) return { ok: false, check: 'keyset-unavailable', detail: 'no keyset chain to verify with' }
      chain = this.initialChain
    } else {
      const fetched = await this.fetchChain(signal)
      if (!fetched.ok) return fetched
      chain = fetched.chain
    }
    const anchor = this.trusted === null ? this.opts.trust : anchorFromKeyset(this.trusted)
    const followed = followKeysetChain(chain, anchor, this.now())
    if (!followed.ok) return followed
    this.trusted = followed.keyset
    return null
  }

  private async fetchChain (signal?: AbortSignal): Promise<{ ok: true, chain: Keyset[] } | VerifyFailure> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    try {
      const res = await this.fetchFn(this.keysUrl!, { method: 'GET', headers: { accept: 'application/json' }, signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]), redirect: 'error' })
      const text = await readBodyCapped(res, this.opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)
      if (res.status !== 200) return { ok: false, check: 'keyset-unavailable', detail: `GET /keys answered ${res.status}` }
      return { ok: true, chain: parseKeysetChain(JSON.parse(text) as unknown) }
    } catch (error) {
      if (error instanceof KeysetError) return { ok: false, check: error.check, detail: error.message }
      if (error instanceof BodyTooLargeError) return { ok: false, check: 'keyset-unavailable', detail: `GET /keys answered with a ${error.message}` }
      if (error instanceof SyntaxError) return { ok: false, check: 'keyset-malformed', detail: 'GET /keys is not JSON' }
      return { ok: false, check: 'keyset-unavailable', detail: `GET /keys failed: ${errorMessage(error)}` }
    }
  }
}

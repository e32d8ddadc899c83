import { parseDuration } from '../domain/duration.js'
import { checkVersion } from '../domain/release.js'
import { isPlainObject } from '../domain/values.js'
import { SIGNATURE_HEADER } from '../domain/spec-statement.js'
import { errorMessage } from './errors.js'
import { DEFAULT_MAX_BODY_BYTES } from './options.js'
import { InvalidSpecError, parseChannelSpec, type ChannelSpec } from './spec.js'

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>

/** Outcome of one spec request, already classified for the reconciler. */
export type FetchResult =
  /** `body`: the exact text received; `signature`: its Chartcast-Signature, when the server signs. */
  | { kind: 'ok', spec: ChannelSpec, etag?: string, pollIntervalMs?: number, body: string, signature?: string }
  | { kind: 'not-modified', pollIntervalMs?: number, signature?: string }
  /** 401/403: the license was refused. Nothing running may change. */
  | { kind: 'refused', status: number, code: string, detail?: string }
  /** 404 (channel/release unknown or empty) and other 4xx: retrying as is will not help. */
  | { kind: 'rejected', status: number, code: string, detail?: string }
  /** Network error, timeout, 429, 5xx, or a body we cannot use. */
  | { kind: 'unavailable', reason: string, status?: number, code?: string, retryAfterMs?: number }

export interface SpecRequest {
  license: string
  etag?: string
  /** Release version running now, sent as `Chartcast-Applied`; omitted for a fresh install. */
  applied?: string
  signal?: AbortSignal
}

/** Body of `POST {server}/channels/{name}/reports`: what became of one apply attempt. */
export interface ApplyReport {
  version: string
  outcome: 'applied' | 'failed' | 'skipped'
  /** Why (failed: helm's error text; skipped: the reason); at most REPORT_DETAIL_MAX characters, never values. */
  detail?: string
  /** Digest of the desired state the report is about. */
  digest?: string
}

/** The server's limit on `detail`. */
export const REPORT_DETAIL_MAX = 4096

/** Outcome of one report request, classified for the report queue. */
export type ReportResult =
  | { kind: 'accepted' }
  /** 401/403: the license was refused; a renewed license may be accepted later. */
  | { kind: 'refused', status: number, code: string }
  /** 400/404 and other 4xx: sending the same report again cannot succeed. */
  | { kind: 'rejected', status: number, code: string, detail?: string }
  /** Network error, timeout, 429, 5xx. */
  | { kind: 'unavailable', reason: string, status?: number, code?: string, retryAfterMs?: number }

export interface ReportRequest {
  license: string
  report: ApplyReport
  signal?: AbortSignal
}

/** What the report queue needs of a client; SpecClient is the real one. */
export interface ReportSender {
  sendReport (req: ReportRequest): Promise<ReportResult>
}

export interface SpecClientOptions {
  server: string
  channel: string
  pin?: string
  fetch?: FetchLike
  /** Per-request ceiling so a hung connection cannot stall the loop forever. */
  timeoutMs?: number
  now?: () => number
  /** Largest response body read (default 10 MiB); a larger one is an unusable answer. */
  maxBodyBytes?: number
}

/** Thrown by readBodyCapped when the body passes the cap; the stream has been cancelled by then. */
export class BodyTooLargeError extends Error {
  constructor (readonly limit: number) {
    super(`response body larger than ${limit} bytes`)
    this.name = 'BodyTooLargeError'
  }
}

/**
 * Reads a response body as UTF-8, counting bytes as they stream in: past `limit` the stream
 * is cancelled (which closes the connection) and nothing more is read, so a huge or endless
 * body costs at most `limit` bytes of memory, with or without a Content-Length.
 */
export async function readBodyCapped (res: Response, limit: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {})
    throw new BodyTooLargeError(limit)
  }
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let received = 0
  let text = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    received += value.byteLength
    if (received > limit) {
      await reader.cancel().catch(() => {})
      throw new BodyTooLargeError(limit)
    }
    text += decoder.decode(value, { stream: true })
  }
  return text + decoder.decode()
}

/** Client for a channel's agent endpoints: `GET {server}/channels/{name}/spec` and `POST .../reports`. */
export class SpecClient implements ReportSender {
  readonly url: string
  readonly reportsUrl: string
  private readonly fetchFn: FetchLike
  private readonly timeoutMs: number
  private readonly now: () => number
  private readonly maxBodyBytes: number

  constructor (opts: SpecClientOptions) {
    // A trailing slash makes relative resolution keep any path prefix (server behind /chartcast/).
    const base = opts.server.endsWith('/') ? opts.server : `${opts.server}/`
    const url = new URL(`channels/${encodeURIComponent(opts.channel)}/spec`, base)
    if (opts.pin !== undefined) url.searchParams.set('version', opts.pin)
    this.url = url.toString()
    this.reportsUrl = new URL(`channels/${encodeURIComponent(opts.channel)}/reports`, base).toString()
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init))
    this.timeoutMs = opts.timeoutMs ?? 30_000
    this.now = opts.now ?? Date.now
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  }

  async fetchSpec (req: SpecRequest): Promise<FetchResult> {
    const headers: Record<string, string> = { authorization: `Bearer ${req.license}`, accept: 'application/json' }
    if (req.etag !== undefined) headers['if-none-match'] = req.etag
    // The server answers 400 to anything but a strict semver; an unorderable version (say from
    // an earlier --from-file run) is better left unsaid than a pull that always fails.
    if (req.applied !== undefined && isStrictVersion(req.applied)) headers['chartcast-applied'] = req.applied
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = req.signal === undefined ? timeout : AbortSignal.any([req.signal, timeout])

    let res: Response
    let body: string
    try {
      res = await this.fetchFn(this.url, { method: 'GET', headers, signal, redirect: 'error' })
      body = await readBodyCapped(res, this.maxBodyBytes)
    } catch (err) {
      if (err instanceof BodyTooLargeError) return { kind: 'unavailable', reason: `server answered with a ${err.message}; not used` }
      // Never include the request/headers in the reason: they carry the license.
      return { kind: 'unavailable', reason: describeNetworkError(err) }
    }

    const pollIntervalMs = parsePollInterval(res.headers.get('x-poll-interval'))
    const signature = res.headers.get(SIGNATURE_HEADER) ?? undefined
    if (res.status === 304) return { kind: 'not-modified', pollIntervalMs, ...(signature !== undefined && { signature }) }
    if (res.status === 200) {
      let spec: ChannelSpec
      try {
        spec = parseChannelSpec(JSON.parse(body) as unknown, 'server spec')
      } catch (err) {
        const reason = err instanceof InvalidSpecError ? err.message : 'server spec is not valid JSON'
        return { kind: 'unavailable', reason, status: 200 }
      }
      const etag = res.headers.get('etag')
      return { kind: 'ok', spec, etag: etag === null || etag === '' ? undefined : etag, pollIntervalMs: pollIntervalMs ?? metadataInterval(spec), body, ...(signature !== undefined && { signature }) }
    }

    const problem = parseProblem(body)
    const code = problem.code ?? `HTTP_${res.status}`
    if (res.status === 401 || res.status === 403) return { kind: 'refused', status: res.status, code, detail: problem.detail }
    if (res.status === 429 || res.status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), this.now())
      return { kind: 'unavailable', reason: `server answered ${res.status} ${code}`, status: res.status, code, retryAfterMs }
    }
    return { kind: 'rejected', status: res.status, code, detail: problem.detail }
  }

  async sendReport (req: ReportRequest): Promise<ReportResult> {
    const headers = { authorization: `Bearer ${req.license}`, 'content-type': 'application/json', accept: 'application/json' }
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = req.signal === undefined ? timeout : AbortSignal.any([req.signal, timeout])
    let res: Response
    let body: string
    try {
      res = await this.fetchFn(this.reportsUrl, { method: 'POST', headers, body: JSON.stringify(req.report), signal, redirect: 'error' })
      body = await readBodyCapped(res, this.maxBodyBytes)
    } catch (err) {
      if (err instanceof BodyTooLargeError) return { kind: 'unavailable', reason: `server answered with a ${err.message}` }
      return { kind: 'unavailable', reason: describeNetworkError(err) }
    }
    if (res.status === 202 || res.status === 200 || res.status === 204) return { kind: 'accepted' }
    const problem = parseProblem(body)
    const code = problem.code ?? `HTTP_${res.status}`
    if (res.status === 401 || res.status === 403) return { kind: 'refused', status: res.status, code }
    if (res.status === 429 || res.status >= 500 || res.status < 400) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), this.now())
      return { kind: 'unavailable', reason: `server answered ${res.status} ${code}`, status: res.status, code, retryAfterMs }
    }
    return { kind: 'rejected', status: res.status, code, detail: problem.detail }
  }
}

function isStrictVersion (version: string): boolean {
  try {
    checkVersion(version)
    return true
  } catch {
    return false
  }
}

function parseProblem (body: string): { code?: string, detail?: string } {
  try {
    const parsed = JSON.parse(body) as unknown
    if (!isPlainObject(parsed)) return {}
    const out: { code?: string, detail?: string } = {}
    // Bounded: these go into log lines.
    if (typeof parsed.code === 'string') out.code = parsed.code.slice(0, 100)
    if (typeof parsed.detail === 'string') out.detail = parsed.detail.slice(0, 300)
    return out
  } catch {
    return {}
  }
}

/** `X-Poll-Interval` is whole seconds. */
export function parsePollInterval (header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined
  const seconds = Number(header.trim())
  return seconds > 0 ? seconds * 1000 : undefined
}

function metadataInterval (spec: ChannelSpec): number | undefined {
  const text = spec.metadata?.pollInterval
  if (typeof text !== 'string') return undefined
  const ms = parseDuration(text)
  return ms !== null && ms > 0 ? ms : undefined
}

/** `Retry-After` is either delta-seconds or an HTTP date. */
export function parseRetryAfter (header: string | null, now: number): number | undefined {
  if (header === null) return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now)
}

function describeNetworkError (err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `request ${err.name === 'TimeoutError' ? 'timed out' : 'aborted'}`
  const cause = (err as { cause?: unknown }).cause
  const code = (cause as { code?: unknown } | undefined)?.code
  if (typeof code === 'string') return `network error: ${code}`
  return `network error: ${errorMessage(cause ?? err)}`
}

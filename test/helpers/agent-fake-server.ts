/**
 * STAND-IN for the real chartcast server, used until test/helpers/server.ts exists.
 * It serves only the agent-facing contract of `GET /channels/{name}/spec` (bearer license,
 * strong ETag + If-None-Match → 304, X-Poll-Interval, ?version= pin, problem+json errors
 * with `code`, Retry-After on 429/503, the `Chartcast-Applied` header recorded) and of
 * `POST /channels/{name}/reports` (202, 400 VALIDATION_FAILED, 404, license refusals), and
 * lets tests control and observe it.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { canonicalJson } from '../../src/domain/values.js'

export interface SpecBody {
  channel: string
  version: string
  chart: { url: string, name?: string, version: string, digest?: string }
  values: Record<string, unknown>
  metadata?: Record<string, unknown>
}

export interface RecordedRequest {
  path: string
  version: string | null
  authorization: string | undefined
  ifNoneMatch: string | undefined
  /** The `Chartcast-Applied` header as received; undefined when absent. */
  applied: string | undefined
  status: number
}

/** One `POST /channels/{name}/reports` as received. */
export interface RecordedReport {
  channel: string
  authorization: string | undefined
  contentType: string | undefined
  /** The parsed JSON body (whatever the agent sent, even when refused). */
  body: unknown
  status: number
}

/** How the reports endpoint misbehaves: a problem answer, `drop` (the connection is cut) or `hang` (never answers). */
export type ReportFailure = Failure | 'drop' | 'hang'

export interface Failure {
  status: number
  code: string
  retryAfter?: string
}

const TITLES: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' }

export class FakeSpecServer {
  readonly requests: RecordedRequest[] = []
  /** Licenses accepted as bearer tokens. */
  readonly licenses = new Set<string>(['good-license'])
  /** Releases by version; `head` is what the channel currently points at. */
  readonly releases = new Map<string, SpecBody>()
  head: string | undefined
  channel = 'stable'
  failure: Failure | undefined
  /** Per-license refusal, e.g. revoked: license → {status, code}. */
  readonly refusals = new Map<string, Failure>()
  pollIntervalSeconds: number | undefined
  /** Raw body override for the 200 answer, to test malformed specs. */
  rawBody: string | undefined
  /** Every report request, accepted or not. */
  readonly reportRequests: RecordedReport[] = []
  /** Set to make the reports endpoint fail (the spec endpoint is unaffected). */
  reportFailure: ReportFailure | undefined

  private readonly server = createServer((req, res) => this.handle(req, res))
  private port = 0

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  static async start (): Promise<FakeSpecServer> {
    const fake = new FakeSpecServer()
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve))
    fake.port = (fake.server.address() as AddressInfo).port
    return fake
  }

  /** Publishes a release and moves the channel head to it (a promotion or a withdrawal). */
  publish (body: SpecBody): void {
    this.releases.set(body.version, body)
    this.head = body.version
  }

  /** Stops listening and drops connections: from now on the agent gets ECONNREFUSED. */
  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  specRequests (): RecordedRequest[] {
    return this.requests
  }

  /** Bodies of the reports answered 202, in arrival order. */
  get reports (): Array<Record<string, unknown>> {
    return this.reportRequests.filter((r) => r.status === 202).map((r) => r.body as Record<string, unknown>)
  }

  static etagOf (body: string): string {
    return `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x')
    const reportMatch = /^\/channels\/([^/]+)\/reports$/.exec(url.pathname)
    if (req.method === 'POST' && reportMatch !== null) {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => this.handleReport(decodeURIComponent(reportMatch[1] as string), req, res, Buffer.concat(chunks).toString('utf8')))
      return
    }
    const applied = req.headers['chartcast-applied']
    const record: RecordedRequest = {
      path: url.pathname,
      version: url.searchParams.get('version'),
      authorization: req.headers.authorization,
      ifNoneMatch: req.headers['if-none-match'],
      applied: Array.isArray(applied) ? applied.join(', ') : applied,
      status: 0
    }
    this.requests.push(record)
    const send = (status: number, headers: Record<string, string>, body?: string): void => {
      record.status = status
      res.writeHead(status, headers)
      res.end(body)
    }
    const problem = (status: number, code: string, extra: Record<string, string> = {}): void => {
      send(status, { 'content-type': 'application/problem+json', ...extra }, JSON.stringify({
        type: `https://chartcast.dev/problems/${code.toLowerCase()}`, title: TITLES[status] ?? 'Error', status, detail: `stand-in server: ${code}`, code
      }))
    }

    const match = /^\/channels\/([^/]+)\/spec$/.exec(url.pathname)
    if (req.method !== 'GET' || match === null) return problem(404, 'NOT_FOUND')
    if (this.failure !== undefined) {
      const { status, code, retryAfter } = this.failure
      return problem(status, code, retryAfter === undefined ? {} : { 'retry-after': retryAfter })
    }
    const auth = req.headers.authorization
    if (auth === undefined || !auth.startsWith('Bearer ')) return problem(401, 'LICENSE_MISSING')
    const license = auth.slice('Bearer '.length)
    const refusal = this.refusals.get(license)
    if (refusal !== undefined) return problem(refusal.status, refusal.code)
    if (!this.licenses.has(license)) return problem(401, 'LICENSE_INVALID')
    if (decodeURIComponent(match[1] as string) !== this.channel) return problem(404, 'CHANNEL_NOT_FOUND')

    const pin = url.searchParams.get('version')
    let spec: SpecBody | undefined
    if (pin !== null) {
      spec = this.releases.get(pin)
      if (spec === undefined) return problem(404, 'RELEASE_NOT_FOUND')
    } else {
      if (this.head === undefined) return problem(404, 'CHANNEL_EMPTY')
      spec = this.releases.get(this.head) as SpecBody
    }

    const body = this.rawBody ?? canonicalJson(spec)
    const etag = FakeSpecServer.etagOf(body)
    const headers: Record<string, string> = { etag }
    if (this.pollIntervalSeconds !== undefined) headers['x-poll-interval'] = String(this.pollIntervalSeconds)
    if (req.headers['if-none-match'] === etag) return send(304, headers)
    send(200, { ...headers, 'content-type': 'application/json' }, body)
  }

  /** The reports contract as the real server states it: 202, 400 VALIDATION_FAILED, 404, 401/403, 429/5xx. */
  private handleReport (channel: string, req: IncomingMessage, res: ServerResponse, text: string): void {
    let body: unknown
    try {
      body = JSON.parse(text) as unknown
    } catch {
      body = text
    }
    const record: RecordedReport = { channel, authorization: req.headers.authorization, contentType: req.headers['content-type'], body, status: 0 }
    this.reportRequests.push(record)
    const problem = (status: number, code: string, extra: Record<string, string> = {}): void => {
      record.status = status
      res.writeHead(status, { 'content-type': 'application/problem+json', ...extra })
      res.end(JSON.stringify({ type: `https://chartcast.dev/problems/${code.toLowerCase()}`, title: TITLES[status] ?? 'Error', status, detail: `stand-in server: ${code}`, code }))
    }
    if (this.reportFailure === 'drop') {
      record.status = -1
      req.socket.destroy()
      return
    }
    if (this.reportFailure === 'hang') {
      record.status = -2
      return
    }
    if (this.reportFailure !== undefined) {
      const { status, code, retryAfter } = this.reportFailure
      return problem(status, code, retryAfter === undefined ? {} : { 'retry-after': retryAfter })
    }
    const auth = req.headers.authorization
    if (auth === undefined || !auth.startsWith('Bearer ')) return problem(401, 'LICENSE_MISSING')
    const license = auth.slice('Bearer '.length)
    const refusal = this.refusals.get(license)
    if (refusal !== undefined) return problem(refusal.status, refusal.code)
    if (!this.licenses.has(license)) return problem(401, 'LICENSE_INVALID')
    if (channel !== this.channel) return problem(404, 'CHANNEL_NOT_FOUND')
    if (!isValidReport(body)) return problem(400, 'VALIDATION_FAILED')
    record.status = 202
    res.writeHead(202)
    res.end()
  }
}

const OUTCOMES = new Set(['applied', 'failed', 'skipped'])
const REPORT_KEYS = new Set(['version', 'outcome', 'detail', 'digest'])

function isValidReport (body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false
  const b = body as Record<string, unknown>
  if (Object.keys(b).some((k) => !REPORT_KEYS.has(k))) return false
  if (typeof b.version !== 'string' || typeof b.outcome !== 'string' || !OUTCOMES.has(b.outcome)) return false
  if (b.detail !== undefined && (typeof b.detail !== 'string' || b.detail.length > 4096)) return false
  return b.digest === undefined || typeof b.digest === 'string'
}

/** A spec body in the server's shape. */
export function makeSpec (version: string, opts: { chartVersion?: string, values?: Record<string, unknown>, channel?: string, chart?: SpecBody['chart'] } = {}): SpecBody {
  const channel = opts.channel ?? 'stable'
  return {
    channel,
    version,
    chart: opts.chart ?? { url: 'https://charts.example.com', name: 'acme-app', version: opts.chartVersion ?? `0.${version.split('.')[1] ?? '0'}.0` },
    values: opts.values ?? { image: { tag: version }, replicas: 2 },
    metadata: { channel, version }
  }
}

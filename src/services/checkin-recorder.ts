/**
 * Check-ins and apply reports on their way to the database. Every authorized pull records
 * where a deployment is (one in-memory record per deployment: the latest wins); a background
 * flusher writes what changed in batches. The pull never waits on the database: while it is
 * down, records accumulate (bounded) and are written when it is back.
 */
import type { ReportOutcome } from '../domain/fleet.js'

export interface CheckinRecord {
  id: string
  channel: string
  applied: string | null
  served: string
  /** ms since the epoch */
  at: number
  agent: string | null
  address: string
}

export interface ReportRecord {
  deploymentId: string
  channel: string
  version: string
  outcome: ReportOutcome
  detail: string | null
  digest: string | null
  /** ms since the epoch */
  at: number
}

/** Where batches go (the store's writeFleet). One call is one transaction. */
export interface FleetWriter {
  writeFleet (checkins: readonly CheckinRecord[], reports: readonly ReportRecord[]): Promise<void>
}

/** What record() reads of a pull: the route's deployment and request satisfy it. */
export interface CheckinSource {
  readonly id: string | null
  readonly channel: string
  readonly applied: string | null
}
export interface CheckinRequest {
  readonly headers: { readonly 'user-agent'?: string | undefined }
  readonly ip: string
}

export interface CheckinRecorderOptions {
  /** Deployments (and, separately, reports) held unflushed at most; past it the oldest are dropped. */
  maxPending: number
  /** Rows per statement: one flush of many records is several batches. */
  batchSize?: number
  /**
   * Batches written at once (each its own transaction, so its own connection). PostgreSQL
   * spends most of a flush on the rows' index updates, one backend per transaction: two in
   * flight use two cores. Embedded PGlite runs one query at a time, so 1 there.
   */
  concurrency?: number
  now?: () => number
  /**
   * While pulls arrive, each lane waits this many times the duration of its last batch before
   * writing the next (0: never). A flush then takes at most about half of what the database
   * and this process can give while the server is serving, and all of it while nobody pulls.
   */
  yieldToPulls?: number
  /** Waits between batches (tests replace it). */
  sleep?: (ms: number) => Promise<void>
  /** Told of each dropped record (metrics). */
  onDrop?: (kind: 'checkin' | 'report') => void
  /** Told of each batch written (metrics). */
  onBatch?: (rows: number, seconds: number) => void
}

/** A User-Agent is the client's text: kept short, as it is stored on every deployment. */
export const MAX_AGENT_LENGTH = 256
/**
 * A batch travels as one array literal per column (the driver's text of it); the widest
 * column, the User-Agent, is typically ~40 bytes a row (256 at most). At 2,000 rows such texts
 * stay under V8's large-object size (128 KiB) and die young: batches as one 1.3 MB JSON text
 * each went to the large-object space, where a 1,000,000-row flush left ~200 MB of them for the
 * next full GC.
 */
const DEFAULT_BATCH_SIZE = 2_000
/** Distinct texts held for sharing (channel names, versions, User-Agents): a fixed bound, none evicted. */
const MAX_INTERNED = 10_000

export class CheckinRecorder {
  private pending = new Map<string, CheckinRecord>()
  private pendingReports: ReportRecord[] = []
  /** Reports before this index were dropped: dropping by shift() would copy the whole array each time. */
  private reportsHead = 0
  private flushing: Promise<void> | null = null
  private readonly maxPending: number
  private readonly batchSize: number
  private readonly concurrency: number
  private readonly now: () => number
  private readonly yieldToPulls: number
  private readonly sleep: (ms: number) => Promise<void>
  /** Pulls recorded since the flush started its last batch: whether the server is serving meanwhile. */
  private pullsDuringBatch = 0
  private droppedCount = 0
  /**
   * Each pull's channel, version and User-Agent are new strings parsed from its request, but a
   * fleet has few distinct ones: records share one copy of each (1,000,000 deployments would
   * otherwise hold about 120 MB of duplicates).
   */
  private readonly interned = new Map<string, string>()

  constructor (private readonly writer: FleetWriter, options: CheckinRecorderOptions) {
    this.maxPending = options.maxPending
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    this.concurrency = Math.max(1, options.concurrency ?? 1)
    this.now = options.now ?? Date.now
    this.yieldToPulls = options.yieldToPulls ?? 0
    this.sleep = options.sleep ?? (async (ms) => { await new Promise((resolve) => setTimeout(resolve, ms)) })
    this.onDrop = options.onDrop
    this.onBatch = options.onBatch
  }

  private readonly onDrop: CheckinRecorderOptions['onDrop']
  private readonly onBatch: CheckinRecorderOptions['onBatch']

  /** Deployments waiting to be written. */
  get pendingCount (): number {
    return this.pending.size
  }

  /** Whether a check-in of this deployment is waiting to be written. */
  isPending (id: string): boolean {
    return this.pending.has(id)
  }

  get pendingReportCount (): number {
    return this.pendingReports.length - this.reportsHead
  }

  /** Records dropped because the bound was reached (check-ins and reports). */
  get dropped (): number {
    return this.droppedCount
  }

  /**
   * The hot path: one Map lookup and set, no promise. A record already waiting is updated in
   * place (it is not being written: a flush takes the whole map and starts a new one).
   * Anonymous pulls (no license, so no deployment id) are not check-ins.
   */
  record (deployment: CheckinSource, served: string, request: CheckinRequest): void {
    const id = deployment.id
    if (id === null) return
    this.pullsDuringBatch++
    let agent = request.headers['user-agent'] ?? null
    if (agent !== null) agent = this.intern(agent.length > MAX_AGENT_LENGTH ? agent.slice(0, MAX_AGENT_LENGTH) : agent)
    const channel = this.intern(deployment.channel)
    const applied = deployment.applied === null ? null : this.intern(deployment.applied)
    const existing = this.pending.get(id)
    if (existing !== undefined) {
      existing.channel = channel
      existing.applied = applied
      existing.served = served
      existing.at = this.now()
      existing.agent = agent
      existing.address = request.ip
      return
    }
    this.pending.set(id, { id, channel, applied, served, at: this.now(), agent, address: request.ip })
    if (this.pending.size > this.maxPending) this.dropOldest()
  }

  /** An apply report: kept for the next flush (every report is a row; none coalesce). */
  report (report: Omit<ReportRecord, 'at'>): void {
    this.pendingReports.push({ ...report, at: this.now() })
    this.boundReports()
  }

  private boundReports (): void {
    while (this.pendingReportCount > this.maxPending) {
      this.reportsHead++
      this.countDrop('report')
    }
    // Compacted once half the array is dropped entries: amortised constant per report.
    if (this.reportsHead > 0 && this.reportsHead * 2 >= this.pendingReports.length) {
      this.pendingReports = this.pendingReports.slice(this.reportsHead)
      this.reportsHead = 0
    }
  }

  private intern (text: string): string {
    const held = this.interned.get(text)
    if (held !== undefined) return held
    if (this.interned.size < MAX_INTERNED) this.interned.set(text, text)
    return text
  }

  private dropOldest (): void {
    // Map iteration follows insertion order: the first key has waited longest.
    const oldest = this.pending.keys().next().value
    if (oldest !== undefined) this.pending.delete(oldest)
    this.countDrop('checkin')
  }

  private countDrop (kind: 'checkin' | 'report'): void {
    this.droppedCount++
    this.onDrop?.(kind)
  }

  /**
   * Writes everything waiting, in batches. Concurrent calls share one flush. A failed flush
   * puts its records back (behind none: a newer record for the same deployment wins) and
   * rejects; the next flush tries them again.
   */
  async flush (): Promise<void> {
    while (this.flushing !== null) await this.flushing.catch(() => {})
    if (this.pending.size === 0 && this.pendingReportCount === 0) return
    this.flushing = this.flushNow()
    try {
      await this.flushing
    } finally {
      this.flushing = null
    }
  }

  private async flushNow (): Promise<void> {
    const checkins = [...this.pending.values()]
    const reports = this.pendingReports.slice(this.reportsHead)
    this.pending = new Map()
    this.pendingReports = []
    this.reportsHead = 0
    const size = this.batchSize
    const batches = Math.max(Math.ceil(checkins.length / size), Math.ceil(reports.length / size))
    let next = 0
    let failure: { error: unknown } | null = null
    // Batches that failed; after a failure no new batch starts, and those never started go back too.
    const unwritten: number[] = []
    const lane = async (): Promise<void> => {
      while (failure === null && next < batches) {
        const index = next++
        const checkinBatch = checkins.slice(index * size, (index + 1) * size)
        const reportBatch = reports.slice(index * size, (index + 1) * size)
        const started = process.hrtime.bigint()
        this.pullsDuringBatch = 0
        try {
          await this.writer.writeFleet(checkinBatch, reportBatch)
        } catch (error) {
          failure ??= { error }
          unwritten.push(index)
          return
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9
        this.onBatch?.(checkinBatch.length + reportBatch.length, seconds)
        // Pulls arrived while the batch was written: give them the time back before the next one.
        if (this.yieldToPulls > 0 && this.pullsDuringBatch > 0 && failure === null && next < batches) await this.sleep(seconds * 1000 * this.yieldToPulls)
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches) }, lane))
    if (failure === null) return
    for (let index = next; index < batches; index++) unwritten.push(index)
    unwritten.sort((a, b) => a - b)
    this.restore(
      unwritten.flatMap((index) => checkins.slice(index * size, (index + 1) * size)),
      unwritten.flatMap((index) => reports.slice(index * size, (index + 1) * size))
    )
    throw (failure as { error: unknown }).error
  }

  /** Unwritten records go back in front of what arrived meanwhile (they are older). */
  private restore (checkins: CheckinRecord[], reports: ReportRecord[]): void {
    const merged = new Map<string, CheckinRecord>()
    for (const record of checkins) {
      if (!this.pending.has(record.id)) merged.set(record.id, record)
    }
    for (const [id, record] of this.pending) merged.set(id, record)
    this.pending = merged
    while (this.pending.size > this.maxPending) this.dropOldest()
    this.pendingReports = reports.concat(this.pendingReports.slice(this.reportsHead))
    this.reportsHead = 0
    this.boundReports()
  }
}

/**
 * Runs flush every `intervalMs` (each waits for the previous), and a last one on stop.
 * A failed flush is reported and retried at the next tick with everything still pending.
 */
export class CheckinFlusher {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null

  constructor (
    private readonly recorder: CheckinRecorder,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
    private readonly afterFlush: () => Promise<void> = async () => {}
  ) {}

  start (): void {
    if (this.timer !== null) return
    this.timer = setInterval(() => {
      if (this.running !== null) return
      this.running = this.tick().finally(() => { this.running = null })
    }, this.intervalMs)
    // The flusher alone must not keep a process alive.
    this.timer.unref()
  }

  private async tick (): Promise<void> {
    try {
      await this.recorder.flush()
      await this.afterFlush()
    } catch (error) {
      this.onError(error)
    }
  }

  /** Stops the timer and writes what is pending (graceful shutdown). */
  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.running !== null) await this.running
    await this.recorder.flush()
  }
}

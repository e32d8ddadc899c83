import type { ApplyReport, ReportSender } from './client.js'
import type { Logger } from './logger.js'

export interface ReporterOptions {
  client: ReportSender
  logger: Logger
  /** Reports kept while the server cannot take them; the oldest are dropped first. */
  maxQueued?: number
  /** Ceiling for one delivery round, so reporting can hold up the loop only this long. */
  deliveryTimeoutMs?: number
  now?: () => number
}

export const DEFAULT_MAX_QUEUED_REPORTS = 100
export const DEFAULT_REPORT_DELIVERY_TIMEOUT_MS = 10_000

/**
 * Tells the server what became of each apply attempt, best effort: reports are queued in
 * memory and sent after the outcome is recorded, oldest first, once per poll that reached
 * the server. Nothing here can change an apply; a report that cannot be sent waits for the
 * next poll, and past `maxQueued` the oldest is dropped (the server only needs the latest
 * to know where the deployment stands). The queue does not survive a restart.
 */
export class Reporter {
  private readonly queue: ApplyReport[] = []
  private readonly maxQueued: number
  private readonly deliveryTimeoutMs: number
  private readonly now: () => number
  private readonly log: Logger
  /** (version, reason) of the last skip reported, so a skip repeated every poll is sent once. */
  private lastSkip: string | undefined
  /** A Retry-After from the server: no delivery before this time. */
  private notBefore = 0

  constructor (private readonly opts: ReporterOptions) {
    this.maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED_REPORTS
    this.deliveryTimeoutMs = opts.deliveryTimeoutMs ?? DEFAULT_REPORT_DELIVERY_TIMEOUT_MS
    this.now = opts.now ?? Date.now
    this.log = opts.logger
  }

  /** Reports waiting to be sent, oldest first. */
  get pending (): readonly ApplyReport[] {
    return this.queue
  }

  /** Queues the report of an apply that ran (applied or failed). */
  recordAttempt (report: ApplyReport & { outcome: 'applied' | 'failed' }): void {
    // After a real attempt the server's latest report is that attempt, so a later skip of the
    // same target is news again.
    this.lastSkip = undefined
    this.enqueue(report)
  }

  /** Queues a skip unless the same target was skipped for the same reason last time. */
  recordSkip (report: ApplyReport & { outcome: 'skipped' }, reason: string): boolean {
    const key = `${report.version}\u0000${reason}`
    if (this.lastSkip === key) return false
    this.lastSkip = key
    this.enqueue(report)
    return true
  }

  /**
   * Sends what is queued, oldest first, until the queue is empty, a send fails, `signal`
   * aborts or the delivery timeout passes. Never throws.
   */
  async deliver (license: string, signal: AbortSignal): Promise<void> {
    if (this.queue.length === 0 || signal.aborted) return
    if (this.now() < this.notBefore) {
      this.log.debug({ event: 'report-deferred', queued: this.queue.length }, 'server asked to wait; reports stay queued')
      return
    }
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(this.deliveryTimeoutMs)])
    while (this.queue.length > 0 && !bounded.aborted) {
      const report = this.queue[0] as ApplyReport
      let result
      try {
        result = await this.opts.client.sendReport({ license, report, signal: bounded })
      } catch (err) {
        result = { kind: 'unavailable' as const, reason: err instanceof Error ? err.message : String(err) }
      }
      switch (result.kind) {
        case 'accepted':
          this.queue.shift()
          this.log.debug({ event: 'report-sent', version: report.version, outcome: report.outcome }, `reported ${report.outcome} ${report.version}`)
          break
        case 'rejected':
          // Sending the same body again cannot succeed; keeping it would block the queue.
          this.queue.shift()
          this.log.warn({ event: 'report-rejected', version: report.version, outcome: report.outcome, status: result.status, code: result.code, detail: result.detail },
            `server rejected the ${report.outcome} report for ${report.version} (${result.status} ${result.code}); dropped`)
          break
        case 'refused':
          this.log.warn({ event: 'report-failed', status: result.status, code: result.code, queued: this.queue.length },
            `report refused (${result.code}); ${this.queue.length} report(s) kept for the next poll`)
          return
        case 'unavailable':
          if (result.retryAfterMs !== undefined) this.notBefore = this.now() + result.retryAfterMs
          this.log.warn({ event: 'report-failed', reason: result.reason, status: result.status, code: result.code, queued: this.queue.length },
            `report not delivered (${result.reason}); ${this.queue.length} report(s) kept for the next poll`)
          return
      }
    }
  }

  private enqueue (report: ApplyReport): void {
    this.queue.push(report)
    while (this.queue.length > this.maxQueued) {
      const dropped = this.queue.shift() as ApplyReport
      this.log.warn({ event: 'report-dropped', version: dropped.version, outcome: dropped.outcome, maxQueued: this.maxQueued },
        `report queue full (${this.maxQueued}); dropped the oldest (${dropped.outcome} ${dropped.version})`)
    }
  }
}

/**
 * Automatic rollout pauses. Reports reach the database through the check-in flusher, on
 * whichever replica received them; right after a flush writes reports about a release that is
 * rolling (as this replica's channel state says), that release's counts are read and, past its
 * autoPause line, the store pauses it under row locks (so two replicas pause it once). The
 * pull path never waits for any of this.
 */
import { rolloutPhase, shouldAutoPause, type ReportCounts, type RolloutState } from '../domain/rollout.js'

export interface AutoPauseStore {
  rolloutCounts (channel: string, version: string): Promise<ReportCounts>
  autoPauseRollout (channel: string, version: string, now: number): Promise<string | null>
}

export interface AutoPauserOptions {
  /** The rollout of a channel's release as this replica serves it, if any. */
  rolloutOf (channel: string, version: string): RolloutState | undefined
  now: () => number
  /** Told of each pause this replica made (refresh, metrics, log). */
  onPaused: (channel: string, version: string, reason: string) => Promise<void> | void
}

/** One report as the flusher wrote it (the recorder's ReportRecord satisfies it). */
interface WrittenReport { readonly channel: string, readonly version: string, readonly outcome: string }

export class AutoPauser {
  /** `channel\n version` pairs with reports written since they were last evaluated. */
  private pending = new Set<string>()

  constructor (private readonly store: AutoPauseStore, private readonly options: AutoPauserOptions) {}

  get pendingCount (): number {
    return this.pending.size
  }

  /** Notes the written reports that can move a rolling release's counts (skipped ones cannot). */
  noteWritten (reports: readonly WrittenReport[]): void {
    const now = this.options.now()
    for (const report of reports) {
      if (report.outcome === 'skipped') continue
      const rollout = this.options.rolloutOf(report.channel, report.version)
      if (rollout === undefined || rollout.record.autoPause === null || rolloutPhase(rollout, now) !== 'rolling') continue
      this.pending.add(`${report.channel}\n${report.version}`)
    }
  }

  /**
   * Evaluates every noted release: a cheap unlocked count first, the locked pause only past the
   * line. A pair whose evaluation failed (database away) stays noted for the next call; the
   * first error is rethrown once all were tried.
   */
  async evaluate (): Promise<void> {
    if (this.pending.size === 0) return
    const pairs = [...this.pending]
    this.pending = new Set()
    let failure: unknown = null
    for (const pair of pairs) {
      const [channel, version] = pair.split('\n') as [string, string]
      try {
        const rollout = this.options.rolloutOf(channel, version)
        if (rollout === undefined || rollout.record.autoPause === null) continue
        if (!shouldAutoPause(rollout.record.autoPause, await this.store.rolloutCounts(channel, version))) continue
        const reason = await this.store.autoPauseRollout(channel, version, this.options.now())
        if (reason !== null) await this.options.onPaused(channel, version, reason)
      } catch (error) {
        this.pending.add(pair)
        failure ??= error
      }
    }
    if (failure !== null) throw failure
  }
}

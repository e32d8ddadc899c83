/**
 * The version the server last served to each deployment that did not say what it runs: it
 * stands in for `Chartcast-Applied` (src/domain/select-spec.ts, `lastServed`), so a W&B
 * operator is not pushed past a required release or handed an older release. This is an
 * approximation: served is not applied (an operator that failed to apply is taken to run
 * what it was given). Chartcast agents say what they run, and their header always wins.
 *
 * The hot path reads and writes one Map; the database is read at start-up (so a restart does
 * not forget) and, where several replicas share it (PostgreSQL), every few seconds for the
 * check-ins the other replicas wrote. The rule every replica applies to a deployment's latest
 * check-in: no header, remember what it was served; a header, forget it.
 */

/** One deployment's latest check-in as the database holds it. */
export interface ServedRow {
  id: string
  served: string | null
  /** The check-in carried no Chartcast-Applied. */
  headerless: boolean
  /** last_seen_at, ms */
  at: number
}

/** Where the rows come from (the fleet store). */
export interface ServedSource {
  /** Headerless deployments with a served version, ordered by id, after `afterId`. */
  listServed (afterId: string | null, limit: number): Promise<ServedRow[]>
  /** Every deployment seen at or after `sinceMs`. */
  listSeenSince (sinceMs: number): Promise<ServedRow[]>
  /** The newest last_seen_at (ms), or null for an empty fleet. */
  newestSeen (): Promise<number | null>
}

export interface ServedVersionsOptions {
  /**
   * How far behind the newest check-in read a refresh reads again: replicas flush up to a
   * flush interval after the pull they record, and their clocks differ a little.
   */
  lagMs: number
  /** Whether a deployment's newer check-in is waiting in this replica's recorder (it wins over the database). */
  isPending?: (id: string) => boolean
  pageSize?: number
}

const DEFAULT_PAGE_SIZE = 10_000

export class ServedVersions {
  private readonly byDeployment = new Map<string, string>()
  /** One string per version, so a million deployments on three versions hold three strings. */
  private readonly interned = new Map<string, string>()
  /** The newest last_seen_at read so far (ms); refreshes read from `watermark - lagMs`. */
  private watermark: number | null = null
  private readonly lagMs: number
  private readonly isPending: (id: string) => boolean
  private readonly pageSize: number

  constructor (private readonly source: ServedSource, options: ServedVersionsOptions) {
    this.lagMs = options.lagMs
    this.isPending = options.isPending ?? (() => false)
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE
  }

  get size (): number {
    return this.byDeployment.size
  }

  /** The hot path: the version last served to a deployment that sent no header; null when none. */
  get (id: string): string | null {
    return this.byDeployment.get(id) ?? null
  }

  /**
   * The hot path, after an answered pull: one Map lookup, and a set only when the version
   * changed. `version` is the compiled spec's own string, shared by every deployment on it.
   */
  served (id: string | null, applied: string | null, version: string): void {
    if (id === null) return
    if (applied === null) {
      if (this.byDeployment.get(id) !== version) this.byDeployment.set(id, version)
    } else if (this.byDeployment.size > 0) {
      this.byDeployment.delete(id)
    }
  }

  /** Start-up: every headerless deployment's served version, a page at a time. */
  async load (): Promise<void> {
    this.watermark = await this.source.newestSeen()
    let after: string | null = null
    for (;;) {
      const page = await this.source.listServed(after, this.pageSize)
      for (const row of page) this.apply(row)
      const last = page.at(-1)
      if (last === undefined || page.length < this.pageSize) return
      after = last.id
    }
  }

  /** The check-ins written since the last read (by any replica), minus the lag. */
  async refresh (): Promise<number> {
    if (this.watermark === null) {
      await this.load()
      return this.byDeployment.size
    }
    const rows = await this.source.listSeenSince(this.watermark - this.lagMs)
    for (const row of rows) {
      // A check-in waiting in this replica's recorder is newer than anything written.
      if (!this.isPending(row.id)) this.apply(row)
      if (row.at > (this.watermark ?? 0)) this.watermark = row.at
    }
    return rows.length
  }

  private apply (row: ServedRow): void {
    if (!row.headerless || row.served === null) {
      this.byDeployment.delete(row.id)
      return
    }
    this.byDeployment.set(row.id, this.intern(row.served))
  }

  private intern (version: string): string {
    const held = this.interned.get(version)
    if (held !== undefined) return held
    this.interned.set(version, version)
    return version
  }
}

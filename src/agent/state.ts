import { mkdir, readFile, rm, stat, watch } from 'node:fs/promises'
import { join } from 'node:path'
import { isPlainObject } from '../domain/values.js'
import { writeFileAtomic } from './fsutil.js'
import { parseChannelSpec, type ChannelSpec } from './spec.js'

/**
 * The last good spec from the server. Keyed by server/channel/pin so that pointing the
 * agent at another channel never applies the old channel's cache when the server is down.
 */
export interface CachedSpec {
  server: string
  channel: string
  pin?: string
  spec: ChannelSpec
  etag?: string
  pollIntervalMs?: number
  fetchedAt: string
  /** The exact body received, kept when answers are verified: a 304's signature is checked against it. */
  body?: string
}

/**
 * What this agent last applied successfully. A cache: decisions come from what the applier
 * observes (the Helm release, the output set); this record serves appliers that cannot
 * observe, and keeps the channel spec of the running release so that, after a withdrawal,
 * customer value changes can still be layered onto it.
 */
export interface AppliedRecord {
  release: string
  namespace: string
  digest: string
  version: string
  chartVersion: string
  appliedAt: string
  /** The channel spec (before local layers) of the release applied. */
  spec?: ChannelSpec
}

/** Consecutive failed applies of one desired digest, for the circuit breaker. */
export interface FailureRecord {
  digest: string
  version: string
  count: number
  /** ISO time of the first and the latest failure of this digest. */
  firstAt: string
  lastAt: string
  /** ISO time the breaker first held it back (so that is warned about once). */
  heldAt?: string
}

export interface StateStore {
  loadSpec (): Promise<CachedSpec | undefined>
  saveSpec (cached: CachedSpec): Promise<void>
  loadApplied (): Promise<AppliedRecord | undefined>
  saveApplied (record: AppliedRecord): Promise<void>
  loadFailure? (): Promise<FailureRecord | undefined>
  /** `undefined` clears the record. */
  saveFailure? (record: FailureRecord | undefined): Promise<void>
  /** True while the operator's `apply-now` file exists in the state directory. */
  applyNowRequested? (): Promise<boolean>
  /** Removes the `apply-now` file once it has been acted on. */
  clearApplyNow? (): Promise<void>
  /** Resolves when the `apply-now` file appears (or `signal` aborts), so a wait for a window can end early. */
  watchApplyNow? (signal: AbortSignal): Promise<void>
}

export type StateWarning = (message: string) => void

const SPEC_FILE = 'spec.json'
const APPLIED_FILE = 'applied.json'
const FAILURE_FILE = 'failures.json'
/** Created by an operator (`touch STATE_DIR/apply-now`) to apply once outside the maintenance windows. */
export const APPLY_NOW_FILE = 'apply-now'

/**
 * State in two small JSON files under --state-dir, each replaced atomically. They are
 * written at different moments (spec when fetched, applied after a successful apply), so
 * keeping them separate means a crash can lose at most the newer of the two, and the
 * agent then either re-fetches or re-applies — both safe.
 */
export class FileStateStore implements StateStore {
  constructor (readonly dir: string, private readonly warn: StateWarning = () => {}) {}

  async loadSpec (): Promise<CachedSpec | undefined> {
    const raw = await this.read(SPEC_FILE)
    if (raw === undefined) return undefined
    try {
      if (!isPlainObject(raw) || typeof raw.server !== 'string' || typeof raw.channel !== 'string' || typeof raw.fetchedAt !== 'string') {
        throw new Error('missing fields')
      }
      const cached: CachedSpec = { server: raw.server, channel: raw.channel, spec: parseChannelSpec(raw.spec, 'cached spec'), fetchedAt: raw.fetchedAt }
      if (typeof raw.pin === 'string') cached.pin = raw.pin
      if (typeof raw.etag === 'string') cached.etag = raw.etag
      if (typeof raw.body === 'string') cached.body = raw.body
      if (typeof raw.pollIntervalMs === 'number' && raw.pollIntervalMs > 0) cached.pollIntervalMs = raw.pollIntervalMs
      return cached
    } catch (err) {
      this.warn(`ignoring unreadable ${SPEC_FILE} in state dir: ${(err as Error).message}`)
      return undefined
    }
  }

  async saveSpec (cached: CachedSpec): Promise<void> {
    await this.write(SPEC_FILE, cached)
  }

  async loadApplied (): Promise<AppliedRecord | undefined> {
    const raw = await this.read(APPLIED_FILE)
    if (raw === undefined) return undefined
    const fields = ['release', 'namespace', 'digest', 'version', 'chartVersion', 'appliedAt'] as const
    if (!isPlainObject(raw) || fields.some((f) => typeof raw[f] !== 'string')) {
      this.warn(`ignoring unreadable ${APPLIED_FILE} in state dir`)
      return undefined
    }
    const record = raw as unknown as AppliedRecord
    if (raw.spec !== undefined) {
      try {
        record.spec = parseChannelSpec(raw.spec, 'applied spec')
      } catch {
        delete record.spec
      }
    }
    return record
  }

  async saveApplied (record: AppliedRecord): Promise<void> {
    await this.write(APPLIED_FILE, record)
  }

  async loadFailure (): Promise<FailureRecord | undefined> {
    const raw = await this.read(FAILURE_FILE)
    if (raw === undefined) return undefined
    if (!isPlainObject(raw) || typeof raw.digest !== 'string' || typeof raw.version !== 'string' || typeof raw.count !== 'number' ||
      typeof raw.firstAt !== 'string' || typeof raw.lastAt !== 'string') {
      this.warn(`ignoring unreadable ${FAILURE_FILE} in state dir`)
      return undefined
    }
    const record: FailureRecord = { digest: raw.digest, version: raw.version, count: raw.count, firstAt: raw.firstAt, lastAt: raw.lastAt }
    if (typeof raw.heldAt === 'string') record.heldAt = raw.heldAt
    return record
  }

  async saveFailure (record: FailureRecord | undefined): Promise<void> {
    if (record === undefined) await rm(join(this.dir, FAILURE_FILE), { force: true })
    else await this.write(FAILURE_FILE, record)
  }

  async applyNowRequested (): Promise<boolean> {
    try {
      await stat(join(this.dir, APPLY_NOW_FILE))
      return true
    } catch {
      return false
    }
  }

  async clearApplyNow (): Promise<void> {
    await rm(join(this.dir, APPLY_NOW_FILE), { force: true })
  }

  async watchApplyNow (signal: AbortSignal): Promise<void> {
    if (signal.aborted) return
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    try {
      // fs/promises' watch is an async generator: the watcher starts only with the first next().
      // Start it before the check, so a file created after the check is still seen (`touch`
      // makes a single event; one before the watcher started would be lost).
      const events = watch(this.dir, { signal })[Symbol.asyncIterator]()
      let next = events.next()
      // Rejected with AbortError when the caller stops waiting after an early return below.
      next.catch(() => {})
      if (await this.applyNowRequested()) return
      for (;;) {
        const { done, value } = await next
        if (done === true) return
        if (value.filename === APPLY_NOW_FILE && await this.applyNowRequested()) return
        next = events.next()
      }
    } catch (err) {
      if ((err as Error).name === 'AbortError') return
      // No file watching here (some network filesystems): the file is still seen at the next poll.
      this.warn(`cannot watch the state dir for ${APPLY_NOW_FILE}: ${(err as Error).message}`)
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve()
        else signal.addEventListener('abort', () => { resolve() }, { once: true })
      })
    }
  }

  private async read (file: string): Promise<unknown> {
    let text: string
    try {
      text = await readFile(join(this.dir, file), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try {
      return JSON.parse(text) as unknown
    } catch {
      // A torn file cannot come from writeFileAtomic, but a hand edit can; start fresh rather than crash-loop.
      this.warn(`ignoring corrupt ${file} in state dir`)
      return undefined
    }
  }

  private async write (file: string, data: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(join(this.dir, file), JSON.stringify(data, null, 2) + '\n')
  }
}

/**
 * The highest channel revision a verified answer carried, per channel: an answer with a lower
 * one is a replay and is refused (docs/signing.md). Behind an interface so it can live where
 * the deployment's truth lives; FileRevisionStore keeps it in --state-dir.
 */
export interface RevisionStore {
  loadHighestRevision (channel: string): Promise<number | null>
  saveHighestRevision (channel: string, revision: number): Promise<void>
}

const REVISIONS_FILE = 'revisions.json'

export class FileRevisionStore implements RevisionStore {
  constructor (readonly dir: string, private readonly warn: StateWarning = () => {}) {}

  private async readAll (): Promise<Record<string, number>> {
    let text: string
    try {
      text = await readFile(join(this.dir, REVISIONS_FILE), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
    try {
      const raw = JSON.parse(text) as unknown
      if (!isPlainObject(raw)) throw new Error('not an object')
      return Object.fromEntries(Object.entries(raw).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isSafeInteger(e[1])))
    } catch {
      this.warn(`ignoring corrupt ${REVISIONS_FILE} in state dir`)
      return {}
    }
  }

  async loadHighestRevision (channel: string): Promise<number | null> {
    return (await this.readAll())[channel] ?? null
  }

  async saveHighestRevision (channel: string, revision: number): Promise<void> {
    const all = await this.readAll()
    if ((all[channel] ?? -1) >= revision) return
    all[channel] = revision
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(join(this.dir, REVISIONS_FILE), JSON.stringify(all, null, 2) + '\n')
  }
}

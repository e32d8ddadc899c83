import semver from 'semver'
import { ForbiddenKeyError } from '../domain/values.js'
import type { Applier, ApplyTarget } from './appliers/types.js'
import type { FetchResult, SpecClient } from './client.js'
import { computeDesired, type DesiredState } from './desired.js'
import { ApplierUnavailableError, ConfigError, EXIT, errorMessage, type ExitCode } from './errors.js'
import { readLocalInputs, type InputPaths, type LocalInputs } from './inputs.js'
import type { ReleaseLock } from './lock.js'
import type { Logger } from './logger.js'
import type { BundleCheck } from '../bundle/verify.js'
import { readSpecFile } from './from-file.js'
import { describeFailure, secretSpellings } from './redact.js'
import type { Reporter } from './reporter.js'
import type { ChannelSpec } from './spec.js'
import type { AppliedRecord, CachedSpec, FailureRecord, RevisionStore, StateStore } from './state.js'
import type { AnswerVerifier } from './spec-verifier.js'
import type { SignedAnswer, VerifyFailure } from './verify.js'
import { abortableSleep, backoffDelay, DEFAULT_INTERVAL_MS, pollDelay, type Random, type Sleep } from './timing.js'
import { isPending, type ChartcastFacts, type ObservedRelease } from './truth.js'
import { isInWindow, nextWindowOpen, type MaintenanceWindow } from './windows.js'

export type Outcome =
  | 'applied'
  | 'unchanged'
  | 'downgrade-refused'
  /** The server found no upgrade path from the version applied (409 NO_UPGRADE_PATH): it keeps running. */
  | 'no-upgrade-path'
  | 'apply-failed'
  | 'config-error'
  | 'license-refused'
  /** The server answered 404/4xx: channel unknown or empty, pinned release missing. */
  | 'rejected'
  /** Server unreachable and no cached spec to fall back on. */
  | 'unreachable'
  | 'error'
  | 'stopped'
  /** The circuit breaker holds this desired digest back after repeated failures. */
  | 'held-back'
  /** Something to apply, but outside every maintenance window. */
  | 'outside-window'
  /** Another agent holds the lock for this release/namespace (`--once` does not wait). */
  | 'locked'
  /** Helm reports an operation in progress on the release (pending-*), younger than the helm timeout. */
  | 'busy'
  /** --trust-root is set and the answer failed a signature check: nothing applied (docs/signing.md). */
  | 'unverified'

export interface CycleReport {
  outcome: Outcome
  /** True when the server could not be used this cycle (the cached spec may still have been applied). */
  serverFailed: boolean
  retryAfterMs?: number
  code?: string
  /** An apply moved the deployment to another version: the next hop of an upgrade path may be waiting. */
  movedVersion?: boolean
  /** With `outside-window`: when the next maintenance window opens (ms since the epoch). */
  nextWindowAt?: number
}

/**
 * Polls made right away after an apply that moved the version, in a row, before the normal
 * interval applies again: an upgrade path is a few hops, and a server that kept moving the
 * deployment would otherwise keep it applying without a pause.
 */
export const MAX_QUICK_POLLS = 10

export interface ReconcilerConfig {
  release: string
  namespace: string
  allowDowngrade: boolean
  /** Refuse a downgrade the server sanctions as a rollback too. */
  neverDowngrade?: boolean
  /** Fixed interval; otherwise the server's hint, otherwise an hour. */
  intervalMs?: number
  /** Air-gapped mode: read the spec (or a signed bundle) from this file instead of the server. */
  fromFile?: string
  /** --trust-root: verification is required (for --from-file: a bundle, checked against it). */
  trustRoot?: string
  /** Identity of the cache entry (server URL, channel, version pin). */
  server?: string
  channel?: string
  pin?: string
  inputs: InputPaths
  /** Circuit breaker: failed applies of one desired digest before it is held back (default 3). */
  maxFailures?: number
  /** Release a held-back digest once, at the first cycle (`--retry-failed`). */
  retryFailed?: boolean
  /** Maintenance windows; empty or absent means "always". */
  windows?: readonly MaintenanceWindow[]
  /** Apply at the first cycle even outside the windows (`--apply-now`). */
  applyNow?: boolean
  /** Helm's --timeout: a pending-* release older than this has no live helm behind it. Default 10 min. */
  helmTimeoutMs?: number
  /**
   * When another agent holds the lock: wait for it (the loop), or end the cycle at once with
   * `locked` (`--once`, so an overlapping CronJob run exits with its own code).
   */
  waitForLock?: boolean
}

export interface ReconcilerDeps {
  applier: Applier
  state: StateStore
  logger: Logger
  /** Required unless config.fromFile is set. */
  client?: SpecClient
  /** Sends apply reports to the server; absent with --no-report and --from-file. */
  reporter?: Reporter
  readInputs?: (paths: InputPaths) => Promise<LocalInputs>
  sleep?: Sleep
  random?: Random
  now?: () => number
  /** One agent at a time per release/namespace; absent: no locking (tests of single agents). */
  lock?: ReleaseLock
  /** How long to wait between tries of a held lock (default 2 s). */
  lockRetryMs?: number
  /** With --trust-root: every answer must verify, or nothing is applied. */
  verifier?: AnswerVerifier
  /** Where the highest verified revision per channel is kept (required with verifier). */
  revisions?: RevisionStore
}

/** Outcomes after which the loop backs off instead of waiting the normal interval. */
const FAILURES: ReadonlySet<Outcome> = new Set(['apply-failed', 'config-error', 'license-refused', 'rejected', 'unreachable', 'error', 'busy', 'unverified'])

export const DEFAULT_MAX_FAILURES = 3
/** A held-back digest is tried again after this long (Flux retries on its interval; we wait a day). */
export const HOLD_BACK_MS = 24 * 60 * 60_000
const DEFAULT_HELM_TIMEOUT_MS = 10 * 60_000

export function exitCodeFor (report: CycleReport): ExitCode {
  switch (report.outcome) {
    case 'applied':
    case 'unchanged':
    case 'downgrade-refused':
    case 'no-upgrade-path':
    case 'outside-window':
    case 'stopped':
      return EXIT.OK
    case 'apply-failed':
    case 'held-back':
    case 'error':
      return EXIT.APPLY_FAILED
    case 'locked':
    case 'busy':
      return EXIT.LOCKED
    case 'config-error':
    case 'rejected':
      return EXIT.CONFIG
    case 'license-refused':
      return EXIT.LICENSE_REFUSED
    case 'unreachable':
      return EXIT.UNREACHABLE
    case 'unverified':
      return EXIT.UNVERIFIED
  }
}

type Obtained =
  /** `serverAnswered`: the server took this poll, so it may take queued reports too. */
  | { ok: true, spec: ChannelSpec, serverFailed: boolean, serverAnswered?: boolean, retryAfterMs?: number, chartArchive?: Buffer }
  | { ok: false, report: CycleReport, serverAnswered?: boolean }

/**
 * One agent: fetch → layer → compare digest → apply, and the loop around it.
 *
 * Invariant: nothing is applied unless a spec was obtained (from the server, its cache,
 * or --from-file) and its layered digest differs from the last *successful* apply. A
 * refused license or an unreachable server therefore never removes or changes what runs.
 */
export class Reconciler {
  private readonly sleep: Sleep
  private readonly random: Random
  private readonly now: () => number
  private readonly readInputs: (paths: InputPaths) => Promise<LocalInputs>
  private readonly log: Logger
  private serverHintMs: number | undefined
  /** Highest revision per channel of the verified bundles this process read (a replayed older one is refused). */
  private readonly bundleRevisions = new Map<string, number>()
  /** Digest of the last downgrade refused, so it is warned about once. */
  private refusedDowngrade: string | undefined
  /** Digest last reported as waiting for a window, so it is logged at info once. */
  private waitingForWindow: string | undefined
  /** `--retry-failed` and `--apply-now` act on the first cycle only. */
  private retryFailedPending: boolean
  private applyNowPending: boolean
  /** What the applier observed at the start of this cycle (or why it could not). */
  private observed: { ok: true, release: ObservedRelease } | { ok: false, error: unknown } | undefined

  constructor (private readonly config: ReconcilerConfig, private readonly deps: ReconcilerDeps) {
    if (config.fromFile === undefined && deps.client === undefined) throw new Error('Reconciler needs a SpecClient unless fromFile is set')
    this.sleep = deps.sleep ?? abortableSleep
    this.random = deps.random ?? Math.random
    this.now = deps.now ?? Date.now
    this.readInputs = deps.readInputs ?? readLocalInputs
    this.log = deps.logger
    this.retryFailedPending = config.retryFailed === true
    this.applyNowPending = config.applyNow === true
  }

  get target (): ApplyTarget {
    return { release: this.config.release, namespace: this.config.namespace }
  }

  /** Runs until `signal` aborts; returns an exit code (2 when the very first cycle finds the configuration unusable). */
  async run (signal: AbortSignal): Promise<number> {
    let failures = 0
    let quickPolls = 0
    let first = true
    this.log.info({ event: 'started', source: this.config.fromFile === undefined ? 'server' : 'file' }, 'agent started')
    while (!signal.aborted) {
      const report = await this.reconcile(signal)
      // Bad flags/files at startup should crash-loop visibly, not poll quietly forever;
      // later config errors (e.g. a ConfigMap edited badly) keep the agent running.
      if (first && report.outcome === 'config-error') return EXIT.CONFIG
      first = false
      if (signal.aborted) break
      let delay: number
      if (report.outcome === 'outside-window') {
        failures = 0
        delay = pollDelay(this.intervalMs(), this.random)
        // Never sleep through a window: wake when the next one opens.
        if (report.nextWindowAt !== undefined) delay = Math.max(0, Math.min(delay, report.nextWindowAt - this.now()))
        this.log.debug({ event: 'waiting', delayMs: delay }, 'waiting for the next poll or maintenance window')
      } else if (report.serverFailed || FAILURES.has(report.outcome)) {
        failures++
        delay = backoffDelay(failures, this.random, report.retryAfterMs)
        this.log.info({ event: 'backing-off', delayMs: delay, failures, outcome: report.outcome }, `backing off ${Math.round(delay / 1000)}s after ${failures} failure(s)`)
      } else if (report.movedVersion === true && quickPolls < MAX_QUICK_POLLS) {
        // The next hop of an upgrade path is asked for now, not a poll interval later.
        failures = 0
        quickPolls++
        delay = 0
        this.log.debug({ event: 'polling-again', quickPolls }, 'moved to a new version; polling again at once')
      } else {
        failures = 0
        quickPolls = 0
        delay = pollDelay(this.intervalMs(), this.random)
        this.log.debug({ event: 'waiting', delayMs: delay }, 'waiting for next poll')
      }
      if (report.outcome === 'outside-window') await this.sleepOrApplyNow(delay, signal)
      else await this.sleep(delay, signal)
    }
    this.log.info({ event: 'stopped' }, 'agent stopped')
    return EXIT.OK
  }

  /** Waiting for a window: an `apply-now` file appearing in the state dir ends the wait early. */
  private async sleepOrApplyNow (delay: number, signal: AbortSignal): Promise<void> {
    const watchApplyNow = this.deps.state.watchApplyNow?.bind(this.deps.state)
    if (watchApplyNow === undefined) return this.sleep(delay, signal)
    const wake = new AbortController()
    const either = AbortSignal.any([signal, wake.signal])
    const watching = watchApplyNow(either).then(() => {
      if (!either.aborted) this.log.info({ event: 'apply-now-file' }, 'apply-now file found; not waiting for the window')
      wake.abort()
    }, () => {
      // Cannot watch: the file is still seen at the next poll.
    })
    await this.sleep(delay, either)
    wake.abort()
    await watching
  }

  /** The interval the loop would wait after a success: --interval, else the server's hint, else 1h. */
  intervalMs (): number {
    return this.config.intervalMs ?? this.serverHintMs ?? DEFAULT_INTERVAL_MS
  }

  /** One full cycle. Never throws: every failure becomes an outcome (and one log line). */
  async reconcile (signal: AbortSignal): Promise<CycleReport> {
    let unlock: (() => Promise<void>) | undefined
    try {
      const lock = await this.takeLock(signal)
      if (lock === 'stopped') return { outcome: 'stopped', serverFailed: false }
      if (lock === 'locked') return { outcome: 'locked', serverFailed: false }
      unlock = lock
      return await this.reconcileUnsafe(signal)
    } catch (err) {
      if (err instanceof ConfigError || err instanceof ForbiddenKeyError) return this.configError(err)
      this.log.error({ event: 'error', reason: errorMessage(err) }, `unexpected error: ${errorMessage(err)}`)
      return { outcome: 'error', serverFailed: false }
    } finally {
      this.observed = undefined
      await unlock?.().catch((err: unknown) => {
        this.log.warn({ event: 'lock-release-failed', reason: errorMessage(err) }, `could not release the lock: ${errorMessage(err)}`)
      })
    }
  }

  /**
   * The release's lock, held for the whole cycle (fetch, observe, apply), so two agents never
   * run Helm for one release at once. The loop waits for it (logging once); `--once` does not.
   */
  private async takeLock (signal: AbortSignal): Promise<(() => Promise<void>) | 'locked' | 'stopped' | undefined> {
    const lock = this.deps.lock
    if (lock === undefined) return undefined
    let announced = false
    for (;;) {
      const release = await lock.tryAcquire()
      if (release !== null) {
        if (announced) this.log.info({ event: 'lock-acquired', lock: lock.path }, 'the other agent is done; lock taken')
        return release
      }
      if (this.config.waitForLock !== true) {
        this.log.warn({ event: 'locked', lock: lock.path }, `another agent holds the lock for ${this.config.namespace}/${this.config.release} (${lock.path}); not running`)
        return 'locked'
      }
      if (!announced) {
        announced = true
        this.log.info({ event: 'waiting-for-lock', lock: lock.path }, `another agent holds the lock for ${this.config.namespace}/${this.config.release} (${lock.path}); waiting`)
      }
      await abortableSleep(this.deps.lockRetryMs ?? 2000, signal)
      if (signal.aborted) return 'stopped'
    }
  }

  private async reconcileUnsafe (signal: AbortSignal): Promise<CycleReport> {
    const inputs = await this.readInputs(this.config.inputs)
    this.observed = await this.observeRelease()
    const obtained = this.config.fromFile === undefined
      ? await this.obtainFromServer(inputs, signal)
      : await this.obtainFromFile(this.config.fromFile)
    if (!obtained.ok) {
      // The server took this poll (or should hear of a refused answer at once): queued reports go out now.
      const deliverNow = obtained.serverAnswered === true || obtained.report.outcome === 'unverified'
      if (deliverNow && this.deps.reporter !== undefined && inputs.license !== undefined) await this.deps.reporter.deliver(inputs.license, signal)
      return obtained.report
    }
    if (signal.aborted) return { outcome: 'stopped', serverFailed: obtained.serverFailed }

    const report = await this.converge(obtained.spec, inputs, obtained.chartArchive)
    report.serverFailed = obtained.serverFailed
    if (obtained.retryAfterMs !== undefined) report.retryAfterMs = obtained.retryAfterMs
    // After the outcome is recorded, and bounded by the reporter's own timeout: a report
    // never delays or changes an apply. Queued reports ride on the next poll that got through.
    if (obtained.serverAnswered === true && this.deps.reporter !== undefined) {
      await this.deps.reporter.deliver(inputs.license as string, signal)
    }
    return report
  }

  private async obtainFromFile (path: string): Promise<Obtained> {
    const file = await readSpecFile(path, {
      ...(this.config.trustRoot === undefined ? {} : { trustRoot: this.config.trustRoot }),
      ...(this.config.channel === undefined ? {} : { channel: this.config.channel }),
      highestRevision: async (channel) => {
        const stored = (await this.deps.revisions?.loadHighestRevision(channel)) ?? null
        const seen = this.bundleRevisions.get(channel) ?? null
        return stored === null ? seen : seen === null ? stored : Math.max(stored, seen)
      },
      nowMs: this.now()
    })
    if (file.kind === 'refused') return this.unverified(file.version, { check: file.check, detail: file.detail })
    const { spec } = file
    if (file.kind === 'bundle') {
      // Kept where an online answer's is (the revision store), and in memory for an agent
      // that has none (no --trust-root revision store wired, as in embedded use).
      this.bundleRevisions.set(spec.channel, Math.max(file.revision, this.bundleRevisions.get(spec.channel) ?? 0))
      await this.deps.revisions?.saveHighestRevision(spec.channel, file.revision)
    }
    this.log.info({ event: 'read-file', version: spec.version, channel: spec.channel, verified: file.kind === 'bundle' },
      `read spec ${spec.version} from ${file.kind === 'bundle' ? 'verified bundle' : 'file'}`)
    const obtained: Obtained = { ok: true, spec, serverFailed: false }
    if (file.kind === 'bundle' && file.chartArchive !== undefined) obtained.chartArchive = file.chartArchive
    return obtained
  }

  private async obtainFromServer (inputs: LocalInputs, signal: AbortSignal): Promise<Obtained> {
    const client = this.deps.client as SpecClient
    const cached = await this.loadCache()
    if (this.serverHintMs === undefined && cached?.pollIntervalMs !== undefined) this.serverHintMs = cached.pollIntervalMs
    // The version that runs, as the cluster says; the state dir's record only when the applier cannot tell.
    const running: { version: string, digest: string } | undefined = this.observed?.ok === true ? this.observed.release.running : await this.loadApplied()
    const runningVersion = running?.version

    // Only offer an ETag when we hold the body it stands for; a 304 must leave us with a spec.
    // Verifying a 304 needs the body its ETag names: without it, ask for the body again.
    const etag = this.deps.verifier !== undefined && cached?.body === undefined ? undefined : cached?.etag
    const result: FetchResult = await client.fetchSpec({ license: inputs.license as string, etag, applied: runningVersion, signal })
    if (signal.aborted) return { ok: false, report: { outcome: 'stopped', serverFailed: false } }
    if ('pollIntervalMs' in result && result.pollIntervalMs !== undefined) this.serverHintMs = result.pollIntervalMs

    switch (result.kind) {
      case 'ok': {
        const refused = await this.verifyAnswer({ body: result.body, signature: result.signature }, result.spec.version, signal)
        if (refused !== null) return refused
        this.log.info({ event: 'fetched', version: result.spec.version, etag: result.etag }, `fetched ${result.spec.channel} ${result.spec.version}`)
        const entry: CachedSpec = { server: this.config.server as string, channel: this.config.channel as string, spec: result.spec, fetchedAt: new Date(this.now()).toISOString() }
        if (this.config.pin !== undefined) entry.pin = this.config.pin
        if (result.etag !== undefined) entry.etag = result.etag
        if (this.deps.verifier !== undefined) entry.body = result.body
        if (this.serverHintMs !== undefined) entry.pollIntervalMs = this.serverHintMs
        await this.deps.state.saveSpec(entry)
        return { ok: true, spec: result.spec, serverFailed: false, serverAnswered: true }
      }
      case 'not-modified':
        if (cached !== undefined) {
          if (cached.body !== undefined) {
            const refused = await this.verifyAnswer({ body: cached.body, signature: result.signature }, cached.spec.version, signal)
            if (refused !== null) return refused
          }
          this.log.info({ event: 'not-modified', version: cached.spec.version, etag: cached.etag }, `spec not modified (${cached.spec.version})`)
          return { ok: true, spec: cached.spec, serverFailed: false, serverAnswered: true }
        }
        return this.unavailable({ kind: 'unavailable', reason: 'server answered 304 without a cached spec', status: 304 }, undefined)
      case 'refused':
        this.log.error({ event: 'license-refused', status: result.status, code: result.code, detail: result.detail },
          `license refused by server (${result.code}); keeping what is deployed, applying nothing`)
        return { ok: false, report: { outcome: 'license-refused', serverFailed: true, code: result.code } }
      case 'rejected':
        if (result.status === 409 && result.code === 'NO_UPGRADE_PATH') return this.noUpgradePath(result.detail, running)
        this.log.error({ event: 'rejected', status: result.status, code: result.code, detail: result.detail },
          `server rejected the request (${result.status} ${result.code}); keeping what is deployed`)
        return { ok: false, report: { outcome: 'rejected', serverFailed: true, code: result.code } }
      case 'unavailable':
        return this.unavailable(result, cached)
    }
  }

  /**
   * Nothing the channel offers can be reached from the version applied (its upgradeFrom
   * refuses it, up to the next required release): keep running it, say so once, and poll at
   * the normal interval, as a vendor has to publish a release that bridges the gap.
   */
  private noUpgradePath (detail: string | undefined, applied: { version: string, digest: string } | undefined): Obtained {
    const from = applied?.version ?? 'the applied release'
    this.log.warn({ event: 'no-upgrade-path', appliedVersion: applied?.version, detail }, `no upgrade path from ${from}: ${detail ?? 'the server offers no release that admits it'}; keeping ${from}`)
    if (applied !== undefined) {
      this.deps.reporter?.recordSkip({
        version: applied.version,
        outcome: 'skipped',
        detail: `no upgrade path from ${applied.version}${detail === undefined ? '' : `: ${detail}`}`,
        digest: applied.digest
      }, 'no-upgrade-path')
    }
    return { ok: false, report: { outcome: 'no-upgrade-path', serverFailed: false, code: 'NO_UPGRADE_PATH' }, serverAnswered: true }
  }

  /**
   * With --trust-root: null when the answer verifies (its revision is then the highest seen),
   * else the refusal. Without it every answer is taken as before.
   */
  private async verifyAnswer (answer: SignedAnswer, version: string, signal: AbortSignal): Promise<Obtained | null> {
    const { verifier, revisions } = this.deps
    if (verifier === undefined) return null
    const channel = this.config.channel as string
    const highestRevision = (await revisions?.loadHighestRevision(channel)) ?? null
    const result = await verifier.verify(answer, { channel, version: this.config.pin ?? null, highestRevision }, signal)
    if (!result.ok) return this.unverified(version, result)
    await revisions?.saveHighestRevision(channel, result.statement.revision)
    this.log.debug({ event: 'verified', version, revision: result.statement.revision, keyset: result.keyset.signed.version }, `answer verified (revision ${result.statement.revision})`)
    return null
  }

  /** A refused answer: nothing applied, the running release stays, the check is logged and reported. */
  private unverified (version: string, failure: { check: VerifyFailure['check'] | BundleCheck | 'bundle-malformed', detail: string }): Obtained {
    this.log.error({ event: 'verification-failed', check: failure.check, detail: failure.detail, version },
      `answer refused: signature check "${failure.check}" failed (${failure.detail}); keeping what is deployed, applying nothing`)
    this.deps.reporter?.recordSkip({ version, outcome: 'skipped', detail: `signature check ${failure.check} failed: ${failure.detail}` }, `unverified:${failure.check}`)
    return { ok: false, report: { outcome: 'unverified', serverFailed: true, code: failure.check } }
  }

  private unavailable (result: Extract<FetchResult, { kind: 'unavailable' }>, cached: CachedSpec | undefined): Obtained {
    this.log.warn({ event: 'server-unavailable', reason: result.reason, status: result.status, code: result.code, retryAfterMs: result.retryAfterMs },
      `server unavailable: ${result.reason}`)
    if (cached === undefined) {
      const report: CycleReport = { outcome: 'unreachable', serverFailed: true }
      if (result.retryAfterMs !== undefined) report.retryAfterMs = result.retryAfterMs
      if (result.code !== undefined) report.code = result.code
      return { ok: false, report }
    }
    this.log.info({ event: 'using-cache', version: cached.spec.version, fetchedAt: cached.fetchedAt }, `using cached spec ${cached.spec.version} from ${cached.fetchedAt}`)
    const obtained: Obtained = { ok: true, spec: cached.spec, serverFailed: true }
    if (result.retryAfterMs !== undefined) obtained.retryAfterMs = result.retryAfterMs
    return obtained
  }

  /** The cache only counts for the same server, channel and pin this agent is configured with. */
  private async loadCache (): Promise<CachedSpec | undefined> {
    const cached = await this.deps.state.loadSpec()
    if (cached === undefined) return undefined
    if (cached.server !== this.config.server || cached.channel !== this.config.channel || cached.pin !== this.config.pin) {
      this.log.info({ event: 'cache-ignored', cachedChannel: cached.channel }, 'cached spec is for another server/channel/pin; ignoring it')
      return undefined
    }
    return cached
  }

  private async loadApplied (): Promise<AppliedRecord | undefined> {
    const applied = await this.deps.state.loadApplied()
    if (applied === undefined) return undefined
    if (applied.release !== this.config.release || applied.namespace !== this.config.namespace) return undefined
    return applied
  }

  /**
   * What runs, from the applier (the Helm release's history, the output set). Appliers that
   * cannot observe fall back to the state directory's record of the last apply.
   */
  private async observeRelease (): Promise<{ ok: true, release: ObservedRelease } | { ok: false, error: unknown }> {
    const applier = this.deps.applier
    if (applier.observe === undefined) {
      const applied = await this.loadApplied()
      if (applied === undefined) return { ok: true, release: { status: 'absent' } }
      return { ok: true, release: { status: 'deployed', running: { version: applied.version, digest: applied.digest, chartVersion: applied.chartVersion } } }
    }
    try {
      return { ok: true, release: await applier.observe(this.target) }
    } catch (err) {
      return { ok: false, error: err }
    }
  }

  private async converge (spec: ChannelSpec, inputs: LocalInputs, chartArchive?: Buffer): Promise<CycleReport> {
    let desired = computeDesired(spec, inputs)
    // A chart a bundle carried is the channel's chart: a CR that replaces the chart gets none.
    if (chartArchive !== undefined && inputs.crChart === undefined) desired.chartArchive = chartArchive
    const secrets = secretSpellings(desired.values, inputs.license === undefined ? [] : [inputs.license])
    const observation = this.observed ?? await this.observeRelease()
    if (!observation.ok) {
      if (observation.error instanceof ApplierUnavailableError) return this.configError(new ApplierUnavailableError(describeFailure(observation.error, secrets).reason))
      // Without knowing what runs, no decision (downgrade, digest) can be trusted: apply nothing.
      const failure = describeFailure(observation.error, secrets)
      this.log.error({ event: 'observe-failed', reason: failure.reason }, `cannot read the release's state, applying nothing: ${failure.reason}`)
      return { outcome: 'apply-failed', serverFailed: false }
    }
    let observed = observation.release

    if (isPending(observed.status)) {
      const stuck = await this.remediatePending(observed, secrets)
      if (stuck !== undefined) return stuck
      const again = await this.observeRelease()
      if (!again.ok) {
        const failure = describeFailure(again.error, secrets)
        this.log.error({ event: 'observe-failed', reason: failure.reason }, `cannot read the release's state after the rollback: ${failure.reason}`)
        return { outcome: 'apply-failed', serverFailed: false }
      }
      observed = again.release
    }

    const cachedApplied = await this.loadApplied()
    const running = observed.running
    const short = desired.digest.slice(0, 12)
    // The same chart and values is nothing to apply, unless the release is newer: then the
    // apply (a Helm upgrade that changes no manifest) records the new version on the release, so
    // the deployment reports what it runs and an upgrade path can route it past that release.
    if (running?.digest === desired.digest && !isLowerVersion(running.version, desired.version)) {
      // (A lower release offered with the same content is not what runs: the record keeps the running one.)
      if (desired.version === running.version) await this.rememberRunningSpec(spec, desired, cachedApplied)
      const offered = desired.version === running.version ? '' : ` (${desired.version}, offered, has the same chart and values)`
      this.log.info({ event: 'unchanged', version: desired.version, digest: short }, `up to date at ${running.version}${offered}`)
      return { outcome: 'unchanged', serverFailed: false }
    }
    if (running === undefined && observed.status !== 'absent') {
      this.log.warn({ event: 'release-unrecorded', status: observed.status },
        `the release exists (${observed.status}) but carries no chartcast record; taking it over with ${desired.version}`)
    }

    if (running !== undefined && isLowerVersion(desired.version, running.version)) {
      if (!this.mayMoveDown(desired)) {
        // A withdrawal must not freeze the deployment: customer-side changes still go onto the
        // running release, layered over its own channel spec (kept in the state directory).
        const runningSpec = cachedApplied?.spec !== undefined && cachedApplied.spec.version === running.version ? cachedApplied.spec : undefined
        const onRunning = runningSpec === undefined ? undefined : computeDesired(runningSpec, inputs)
        if (runningSpec === undefined || onRunning === undefined || onRunning.digest === running.digest) return this.refuseDowngrade(desired, running, runningSpec !== undefined)
        this.log.info({ event: 'values-on-running', version: running.version, offeredVersion: desired.version, digest: onRunning.digest.slice(0, 12) },
          `the channel offers only ${desired.version}, lower than the running ${running.version}: applying the changed local values to ${running.version}`)
        spec = runningSpec
        desired = onRunning
      } else {
        const sanctioned = this.isSanctionedRollback(desired)
        this.log.warn({ event: 'downgrade-allowed', version: desired.version, appliedVersion: running.version, ...(sanctioned && { rollback: true }) },
          `moving from ${running.version} down to ${desired.version} (${sanctioned ? 'a rollback sanctioned by the server' : '--allow-downgrade'})`)
      }
    }

    const held = await this.holdBack(desired)
    if (held !== undefined) return held
    const outside = await this.outsideWindow(desired)
    if (outside !== undefined) return outside
    return this.apply(spec, desired, secrets, running?.version)
  }

  /** The server marks the answer a rollback it sanctions (`metadata.rollback: "true"`), and --never-downgrade is not set. */
  private isSanctionedRollback (desired: DesiredState): boolean {
    return desired.rollback === true && this.config.neverDowngrade !== true
  }

  /** May the agent move to a lower release version? With --allow-downgrade, or on a sanctioned rollback. */
  private mayMoveDown (desired: DesiredState): boolean {
    return this.config.allowDowngrade || this.isSanctionedRollback(desired)
  }

  private refuseDowngrade (desired: DesiredState, running: ChartcastFacts, haveRunningSpec: boolean): CycleReport {
    // A withdrawal keeps the channel below us until a new release: warn once per refused
    // target, then repeat it at debug on every poll instead of flooding the log.
    const level = this.refusedDowngrade === desired.digest ? 'debug' : 'warn'
    this.refusedDowngrade = desired.digest
    const hint = haveRunningSpec ? '' : ` (the spec of ${running.version} is not in the state directory, so local value changes wait for a new release)`
    // A rollback the server sanctions is refused only because of --never-downgrade.
    const neverEven = desired.rollback === true
    this.log[level]({ event: 'downgrade-refused', version: desired.version, appliedVersion: running.version },
      `refusing to move from ${running.version} down to ${desired.version}; keeping ${running.version} (${neverEven ? '--never-downgrade refuses even a rollback the server sanctions' : 'use --allow-downgrade to permit'})${hint}`)
    this.deps.reporter?.recordSkip({
      version: desired.version,
      outcome: 'skipped',
      detail: `downgrade refused: ${running.version} is applied and ${desired.version} is lower (${neverEven ? '--never-downgrade is set' : '--allow-downgrade is not set'})`,
      digest: desired.digest
    }, 'downgrade-refused')
    return { outcome: 'downgrade-refused', serverFailed: false }
  }

  /**
   * When what runs is exactly this spec layered with today's inputs, keep the spec in the
   * state directory: a fresh state directory learns the running release's spec this way, so a
   * later withdrawal can still take local value changes.
   */
  private async rememberRunningSpec (spec: ChannelSpec, desired: DesiredState, cached: AppliedRecord | undefined): Promise<void> {
    if (cached?.digest === desired.digest && cached.spec !== undefined) return
    await this.deps.state.saveApplied(this.appliedRecord(spec, desired, cached?.appliedAt ?? new Date(this.now()).toISOString()))
  }

  private appliedRecord (spec: ChannelSpec, desired: DesiredState, appliedAt: string): AppliedRecord {
    return {
      release: this.config.release,
      namespace: this.config.namespace,
      digest: desired.digest,
      version: desired.version,
      chartVersion: desired.chart.version,
      appliedAt,
      spec
    }
  }

  /**
   * A release left `pending-*` by a helm that was killed blocks every later upgrade. Younger
   * than the helm timeout, a helm may still be working on it (another agent with another state
   * directory, a person): leave it. Older, nobody is: roll back to the last deployed revision.
   */
  private async remediatePending (observed: ObservedRelease, secrets: readonly string[]): Promise<CycleReport | undefined> {
    const timeoutMs = this.config.helmTimeoutMs ?? DEFAULT_HELM_TIMEOUT_MS
    const since = observed.updatedAt === undefined ? 'an unknown time' : new Date(observed.updatedAt).toISOString()
    const ageMs = observed.updatedAt === undefined ? Infinity : this.now() - observed.updatedAt
    if (ageMs < timeoutMs) {
      this.log.warn({ event: 'release-busy', status: observed.status, revision: observed.revision, since },
        `the release is ${observed.status} since ${since}, within the helm timeout: another helm operation may be running; not touching it`)
      return { outcome: 'busy', serverFailed: false }
    }
    const applier = this.deps.applier
    if (observed.rollbackTo === undefined || applier.rollback === undefined) {
      this.log.error({ event: 'stuck-release', status: observed.status, revision: observed.revision, since },
        `the release is stuck in ${observed.status} since ${since} and has no deployed revision to roll back to; it needs \`helm uninstall\` or a manual fix`)
      return { outcome: 'apply-failed', serverFailed: false }
    }
    this.log.warn({ event: 'rolling-back', status: observed.status, revision: observed.revision, to: observed.rollbackTo, since },
      `the release is stuck in ${observed.status} since ${since}, longer than the helm timeout; rolling back to revision ${observed.rollbackTo}`)
    try {
      await applier.rollback(this.target, observed.rollbackTo)
    } catch (err) {
      const failure = describeFailure(err, secrets)
      this.log.error({ event: 'rollback-failed', reason: failure.reason }, `rollback to revision ${observed.rollbackTo} failed: ${failure.reason}`)
      return { outcome: 'apply-failed', serverFailed: false }
    }
    this.log.info({ event: 'rolled-back', to: observed.rollbackTo }, `rolled back to revision ${observed.rollbackTo}; continuing`)
    return undefined
  }

  /**
   * Circuit breaker: after maxFailures failed applies of one desired digest, it is held back
   * (so upgrade hooks and migrations do not re-run every few minutes) until the desired state
   * changes, `--retry-failed` is given, or HOLD_BACK_MS pass since the last failure.
   */
  private async holdBack (desired: DesiredState): Promise<CycleReport | undefined> {
    const state = this.deps.state
    if (state.loadFailure === undefined) return undefined
    const record = await state.loadFailure()
    if (record === undefined) return undefined
    if (record.digest !== desired.digest) {
      await state.saveFailure?.(undefined)
      return undefined
    }
    const max = this.config.maxFailures ?? DEFAULT_MAX_FAILURES
    if (record.count < max) return undefined
    if (this.retryFailedPending) {
      this.retryFailedPending = false
      this.log.info({ event: 'retry-failed', version: desired.version, failures: record.count }, `retrying ${desired.version} after ${record.count} failures (--retry-failed)`)
      return undefined
    }
    const until = Date.parse(record.lastAt) + HOLD_BACK_MS
    if (!(this.now() < until)) return undefined
    const untilText = new Date(until).toISOString()
    const first = record.heldAt === undefined
    if (first) await state.saveFailure?.({ ...record, heldAt: new Date(this.now()).toISOString() })
    this.log[first ? 'warn' : 'debug']({ event: 'held-back', version: desired.version, digest: desired.digest.slice(0, 12), failures: record.count, until: untilText },
      `holding ${desired.version} back after ${record.count} failed applies; next try at ${untilText}, on a new desired state, or with --retry-failed`)
    this.deps.reporter?.recordSkip({
      version: desired.version,
      outcome: 'skipped',
      detail: `held back: ${record.count} failed applies of this desired state; next try at ${untilText}, when the desired state changes, or with --retry-failed`,
      digest: desired.digest
    }, 'held-back')
    return { outcome: 'held-back', serverFailed: false }
  }

  private async recordFailure (desired: DesiredState): Promise<void> {
    const state = this.deps.state
    if (state.loadFailure === undefined || state.saveFailure === undefined) return
    const previous = await state.loadFailure()
    const at = new Date(this.now()).toISOString()
    const record: FailureRecord = previous?.digest === desired.digest
      ? { digest: desired.digest, version: desired.version, count: previous.count + 1, firstAt: previous.firstAt, lastAt: at }
      : { digest: desired.digest, version: desired.version, count: 1, firstAt: at, lastAt: at }
    await state.saveFailure(record)
  }

  /** Outside every maintenance window nothing is applied, unless --apply-now or STATE_DIR/apply-now asks for one apply. */
  private async outsideWindow (desired: DesiredState): Promise<CycleReport | undefined> {
    const windows = this.config.windows ?? []
    if (windows.length === 0) return undefined
    const now = this.now()
    if (isInWindow(windows, now)) return undefined
    if (this.applyNowPending) {
      this.log.info({ event: 'apply-now', version: desired.version }, `applying ${desired.version} outside the maintenance windows (--apply-now)`)
      return undefined
    }
    if (await this.deps.state.applyNowRequested?.() === true) {
      this.applyNowPending = true
      this.log.info({ event: 'apply-now', version: desired.version }, `applying ${desired.version} outside the maintenance windows (apply-now file)`)
      return undefined
    }
    const next = nextWindowOpen(windows, now)
    const nextText = next === undefined ? 'never' : new Date(next).toISOString()
    const level = this.waitingForWindow === desired.digest ? 'debug' : 'info'
    this.waitingForWindow = desired.digest
    this.log[level]({ event: 'outside-window', version: desired.version, nextWindowAt: nextText },
      `outside every maintenance window: ${desired.version} waits for the next one (${nextText})`)
    this.deps.reporter?.recordSkip({ version: desired.version, outcome: 'skipped', detail: `outside maintenance window; the next opens ${nextText}`, digest: desired.digest }, 'outside-window')
    const report: CycleReport = { outcome: 'outside-window', serverFailed: false }
    if (next !== undefined) report.nextWindowAt = next
    return report
  }

  private async apply (spec: ChannelSpec, desired: DesiredState, secrets: readonly string[], runningVersion: string | undefined): Promise<CycleReport> {
    const short = desired.digest.slice(0, 12)
    this.retryFailedPending = false
    if (this.applyNowPending) {
      this.applyNowPending = false
      await this.deps.state.clearApplyNow?.()
    }
    this.log.info({ event: 'applying', version: desired.version, chartVersion: desired.chart.version, chart: desired.chart.name ?? desired.chart.url, digest: short, applier: this.deps.applier.name },
      `applying ${desired.version} (chart ${desired.chart.version})`)
    const started = this.now()
    try {
      await this.deps.applier.apply(desired, this.target, this.factsFor(desired))
    } catch (err) {
      // Helm and the API server quote values in their errors: what is logged or reported is redacted.
      const failure = describeFailure(err, secrets)
      this.deps.reporter?.recordAttempt({ version: desired.version, outcome: 'failed', detail: failure.detail, digest: desired.digest })
      if (err instanceof ApplierUnavailableError) return this.configError(new ApplierUnavailableError(failure.reason))
      await this.recordFailure(desired)
      this.log.error({ event: 'apply-failed', version: desired.version, reason: failure.reason }, `apply of ${desired.version} failed: ${failure.reason}`)
      return { outcome: 'apply-failed', serverFailed: false }
    }
    const durationMs = this.now() - started
    // Recorded only after success: a failed apply is retried next cycle (under backoff).
    await this.deps.state.saveApplied(this.appliedRecord(spec, desired, new Date(this.now()).toISOString()))
    await this.deps.state.saveFailure?.(undefined)
    this.log.info({ event: 'applied', version: desired.version, digest: short, durationMs }, `applied ${desired.version} in ${durationMs}ms`)
    this.deps.reporter?.recordAttempt({ version: desired.version, outcome: 'applied', digest: desired.digest })
    // A first install got the highest release already: only a move from one version to another may have a next hop.
    return { outcome: 'applied', serverFailed: false, movedVersion: runningVersion !== undefined && runningVersion !== desired.version }
  }

  /** What is recorded with the release (see truth.ts); other features add their own keys here. */
  private factsFor (desired: DesiredState): ChartcastFacts {
    return { version: desired.version, digest: desired.digest, chartVersion: desired.chart.version }
  }

  private configError (err: Error): CycleReport {
    this.log.error({ event: 'config-error', reason: err.message }, `configuration error: ${err.message}`)
    return { outcome: 'config-error', serverFailed: false }
  }
}

/** Only versions both valid semver are compared; anything else cannot be ordered, so it is not a "downgrade". */
export function isLowerVersion (next: string, current: string): boolean {
  const a = semver.valid(next)
  const b = semver.valid(current)
  return a !== null && b !== null && semver.lt(a, b)
}

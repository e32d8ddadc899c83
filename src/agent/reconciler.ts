import semver from 'semver'
import { ForbiddenKeyError } from '../domain/values.js'
import type { Applier, ApplyTarget } from './appliers/types.js'
import type { FetchResult, SpecClient } from './client.js'
import { computeDesired, type DesiredState } from './desired.js'
import { ApplierUnavailableError, ConfigError, EXIT, errorMessage, type ExitCode } from './errors.js'
import { readLocalInputs, type InputPaths, type LocalInputs } from './inputs.js'
import type { Logger } from './logger.js'
import { describeFailure, secretSpellings } from './redact.js'
import type { Reporter } from './reporter.js'
import { InvalidSpecError, parseChannelSpec, type ChannelSpec } from './spec.js'
import type { AppliedRecord, CachedSpec, StateStore } from './state.js'
import { abortableSleep, backoffDelay, DEFAULT_INTERVAL_MS, pollDelay, type Random, type Sleep } from './timing.js'
import { parseYamlData, readText } from './yaml.js'

export type Outcome =
  | 'applied'
  | 'unchanged'
  | 'downgrade-refused'
  | 'apply-failed'
  | 'config-error'
  | 'license-refused'
  /** The server answered 404/4xx: channel unknown or empty, pinned release missing. */
  | 'rejected'
  /** Server unreachable and no cached spec to fall back on. */
  | 'unreachable'
  | 'error'
  | 'stopped'

export interface CycleReport {
  outcome: Outcome
  /** True when the server could not be used this cycle (the cached spec may still have been applied). */
  serverFailed: boolean
  retryAfterMs?: number
  code?: string
}

export interface ReconcilerConfig {
  release: string
  namespace: string
  allowDowngrade: boolean
  /** Refuse a downgrade the server sanctions as a rollback too. */
  neverDowngrade?: boolean
  /** Fixed interval; otherwise the server's hint, otherwise an hour. */
  intervalMs?: number
  /** Air-gapped mode: read the spec from this file instead of the server. */
  fromFile?: string
  /** Identity of the cache entry (server URL, channel, version pin). */
  server?: string
  channel?: string
  pin?: string
  inputs: InputPaths
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
}

/** Outcomes after which the loop backs off instead of waiting the normal interval. */
const FAILURES: ReadonlySet<Outcome> = new Set(['apply-failed', 'config-error', 'license-refused', 'rejected', 'unreachable', 'error'])

export function exitCodeFor (report: CycleReport): ExitCode {
  switch (report.outcome) {
    case 'applied':
    case 'unchanged':
    case 'downgrade-refused':
    case 'stopped':
      return EXIT.OK
    case 'apply-failed':
    case 'error':
      return EXIT.APPLY_FAILED
    case 'config-error':
    case 'rejected':
      return EXIT.CONFIG
    case 'license-refused':
      return EXIT.LICENSE_REFUSED
    case 'unreachable':
      return EXIT.UNREACHABLE
  }
}

type Obtained =
  /** `serverAnswered`: the server took this poll, so it may take queued reports too. */
  | { ok: true, spec: ChannelSpec, serverFailed: boolean, serverAnswered?: boolean, retryAfterMs?: number }
  | { ok: false, report: CycleReport }

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
  /** Digest of the last downgrade refused, so it is warned about once. */
  private refusedDowngrade: string | undefined

  constructor (private readonly config: ReconcilerConfig, private readonly deps: ReconcilerDeps) {
    if (config.fromFile === undefined && deps.client === undefined) throw new Error('Reconciler needs a SpecClient unless fromFile is set')
    this.sleep = deps.sleep ?? abortableSleep
    this.random = deps.random ?? Math.random
    this.now = deps.now ?? Date.now
    this.readInputs = deps.readInputs ?? readLocalInputs
    this.log = deps.logger
  }

  get target (): ApplyTarget {
    return { release: this.config.release, namespace: this.config.namespace }
  }

  /** Runs until `signal` aborts; returns an exit code (2 when the very first cycle finds the configuration unusable). */
  async run (signal: AbortSignal): Promise<number> {
    let failures = 0
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
      if (report.serverFailed || FAILURES.has(report.outcome)) {
        failures++
        delay = backoffDelay(failures, this.random, report.retryAfterMs)
        this.log.info({ event: 'backing-off', delayMs: delay, failures, outcome: report.outcome }, `backing off ${Math.round(delay / 1000)}s after ${failures} failure(s)`)
      } else {
        failures = 0
        delay = pollDelay(this.intervalMs(), this.random)
        this.log.debug({ event: 'waiting', delayMs: delay }, 'waiting for next poll')
      }
      await this.sleep(delay, signal)
    }
    this.log.info({ event: 'stopped' }, 'agent stopped')
    return EXIT.OK
  }

  /** The interval the loop would wait after a success: --interval, else the server's hint, else 1h. */
  intervalMs (): number {
    return this.config.intervalMs ?? this.serverHintMs ?? DEFAULT_INTERVAL_MS
  }

  /** One full cycle. Never throws: every failure becomes an outcome (and one log line). */
  async reconcile (signal: AbortSignal): Promise<CycleReport> {
    try {
      return await this.reconcileUnsafe(signal)
    } catch (err) {
      if (err instanceof ConfigError || err instanceof ForbiddenKeyError) return this.configError(err)
      this.log.error({ event: 'error', reason: errorMessage(err) }, `unexpected error: ${errorMessage(err)}`)
      return { outcome: 'error', serverFailed: false }
    }
  }

  private async reconcileUnsafe (signal: AbortSignal): Promise<CycleReport> {
    const inputs = await this.readInputs(this.config.inputs)
    const obtained = this.config.fromFile === undefined
      ? await this.obtainFromServer(inputs, signal)
      : await this.obtainFromFile(this.config.fromFile)
    if (!obtained.ok) return obtained.report
    if (signal.aborted) return { outcome: 'stopped', serverFailed: obtained.serverFailed }

    const report = await this.converge(computeDesired(obtained.spec, inputs), inputs)
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
    const data = parseYamlData(await readText(path, 'spec file'), `spec file ${path}`)
    let spec: ChannelSpec
    try {
      spec = parseChannelSpec(data, `spec file ${path}`)
    } catch (err) {
      if (err instanceof InvalidSpecError) throw new ConfigError(err.message)
      throw err
    }
    this.log.info({ event: 'read-file', version: spec.version, channel: spec.channel }, `read spec ${spec.version} from file`)
    return { ok: true, spec, serverFailed: false }
  }

  private async obtainFromServer (inputs: LocalInputs, signal: AbortSignal): Promise<Obtained> {
    const client = this.deps.client as SpecClient
    const cached = await this.loadCache()
    if (this.serverHintMs === undefined && cached?.pollIntervalMs !== undefined) this.serverHintMs = cached.pollIntervalMs
    const applied = await this.loadApplied()

    // Only offer an ETag when we hold the body it stands for; a 304 must leave us with a spec.
    const result: FetchResult = await client.fetchSpec({ license: inputs.license as string, etag: cached?.etag, applied: applied?.version, signal })
    if (signal.aborted) return { ok: false, report: { outcome: 'stopped', serverFailed: false } }
    if ('pollIntervalMs' in result && result.pollIntervalMs !== undefined) this.serverHintMs = result.pollIntervalMs

    switch (result.kind) {
      case 'ok': {
        this.log.info({ event: 'fetched', version: result.spec.version, etag: result.etag }, `fetched ${result.spec.channel} ${result.spec.version}`)
        const entry: CachedSpec = { server: this.config.server as string, channel: this.config.channel as string, spec: result.spec, fetchedAt: new Date(this.now()).toISOString() }
        if (this.config.pin !== undefined) entry.pin = this.config.pin
        if (result.etag !== undefined) entry.etag = result.etag
        if (this.serverHintMs !== undefined) entry.pollIntervalMs = this.serverHintMs
        await this.deps.state.saveSpec(entry)
        return { ok: true, spec: result.spec, serverFailed: false, serverAnswered: true }
      }
      case 'not-modified':
        if (cached !== undefined) {
          this.log.info({ event: 'not-modified', version: cached.spec.version, etag: cached.etag }, `spec not modified (${cached.spec.version})`)
          return { ok: true, spec: cached.spec, serverFailed: false, serverAnswered: true }
        }
        return this.unavailable({ kind: 'unavailable', reason: 'server answered 304 without a cached spec', status: 304 }, undefined)
      case 'refused':
        this.log.error({ event: 'license-refused', status: result.status, code: result.code, detail: result.detail },
          `license refused by server (${result.code}); keeping what is deployed, applying nothing`)
        return { ok: false, report: { outcome: 'license-refused', serverFailed: true, code: result.code } }
      case 'rejected':
        this.log.error({ event: 'rejected', status: result.status, code: result.code, detail: result.detail },
          `server rejected the request (${result.status} ${result.code}); keeping what is deployed`)
        return { ok: false, report: { outcome: 'rejected', serverFailed: true, code: result.code } }
      case 'unavailable':
        return this.unavailable(result, cached)
    }
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

  private async converge (desired: DesiredState, inputs: LocalInputs): Promise<CycleReport> {
    const applied = await this.loadApplied()
    const short = desired.digest.slice(0, 12)
    if (applied?.digest === desired.digest) {
      this.log.info({ event: 'unchanged', version: desired.version, digest: short }, `up to date at ${desired.version}`)
      return { outcome: 'unchanged', serverFailed: false }
    }
    if (applied !== undefined && isLowerVersion(desired.version, applied.version)) {
      // A release withdrawn with rollback=true: the server says moving down is the fix.
      const sanctioned = desired.rollback === true && this.config.neverDowngrade !== true
      if (!this.config.allowDowngrade && !sanctioned) {
        // A withdrawal keeps the channel below us until a new release: warn once per refused
        // target, then repeat it at debug on every poll instead of flooding the log.
        const level = this.refusedDowngrade === desired.digest ? 'debug' : 'warn'
        this.refusedDowngrade = desired.digest
        const neverEven = desired.rollback === true
        this.log[level]({ event: 'downgrade-refused', version: desired.version, appliedVersion: applied.version },
          `refusing to move from ${applied.version} down to ${desired.version}; keeping ${applied.version} (${neverEven ? '--never-downgrade refuses even a rollback the server sanctions' : 'use --allow-downgrade to permit'})`)
        this.deps.reporter?.recordSkip({
          version: desired.version,
          outcome: 'skipped',
          detail: `downgrade refused: ${applied.version} is applied and ${desired.version} is lower (${neverEven ? '--never-downgrade is set' : '--allow-downgrade is not set'})`,
          digest: desired.digest
        }, 'downgrade-refused')
        return { outcome: 'downgrade-refused', serverFailed: false }
      }
      this.log.warn({ event: 'downgrade-allowed', version: desired.version, appliedVersion: applied.version, ...(sanctioned && { rollback: true }) },
        `moving from ${applied.version} down to ${desired.version} (${sanctioned ? 'a rollback sanctioned by the server' : '--allow-downgrade'})`)
    }

    this.log.info({ event: 'applying', version: desired.version, chartVersion: desired.chart.version, chart: desired.chart.name ?? desired.chart.url, digest: short, applier: this.deps.applier.name },
      `applying ${desired.version} (chart ${desired.chart.version})`)
    const started = this.now()
    try {
      await this.deps.applier.apply(desired, this.target)
    } catch (err) {
      // Helm and the API server quote values in their errors: what is logged or reported is redacted.
      const failure = describeFailure(err, secretSpellings(desired.values, inputs.license === undefined ? [] : [inputs.license]))
      this.deps.reporter?.recordAttempt({ version: desired.version, outcome: 'failed', detail: failure.detail, digest: desired.digest })
      if (err instanceof ApplierUnavailableError) return this.configError(new ApplierUnavailableError(failure.reason))
      this.log.error({ event: 'apply-failed', version: desired.version, reason: failure.reason }, `apply of ${desired.version} failed: ${failure.reason}`)
      return { outcome: 'apply-failed', serverFailed: false }
    }
    const durationMs = this.now() - started
    // Recorded only after success: a failed apply is retried next cycle (under backoff).
    await this.deps.state.saveApplied({
      release: this.config.release,
      namespace: this.config.namespace,
      digest: desired.digest,
      version: desired.version,
      chartVersion: desired.chart.version,
      appliedAt: new Date(this.now()).toISOString()
    })
    this.log.info({ event: 'applied', version: desired.version, digest: short, durationMs }, `applied ${desired.version} in ${durationMs}ms`)
    this.deps.reporter?.recordAttempt({ version: desired.version, outcome: 'applied', digest: desired.digest })
    return { outcome: 'applied', serverFailed: false }
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

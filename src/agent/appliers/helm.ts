import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { fetchVerifiedChart, type VerifiedChartRequest } from '../chart-fetch.js'
import type { DesiredState } from '../desired.js'
import { ApplierUnavailableError } from '../errors.js'
import { writeFileDurable } from '../fsutil.js'
import { chartReference, isOci } from '../spec.js'
import { decodeFacts, encodeFacts, labelValue, toReleaseStatus, type ChartcastFacts, type ObservedRelease } from '../truth.js'
import type { Applier, ApplyTarget } from './types.js'

export interface HelmApplierOptions {
  /** Binary name or path; resolved on PATH by the OS when it has no slash. */
  helmBin: string
  /** Passed to `helm --timeout` (Go duration). */
  timeoutMs: number
  /** Child environment; defaults to this process's environment. */
  env?: NodeJS.ProcessEnv
  /** Where the private values directory is created; defaults to the OS temp dir. */
  tmpDir?: string
}

export class HelmError extends Error {
  /**
   * @param status how helm ended, e.g. "exited with 1"
   * @param stderr the end of helm's stderr (whole lines, raw: may quote values, redact before use)
   */
  constructor (message: string, readonly exitCode: number | null, readonly status = '', readonly stderr = '') {
    super(message)
    this.name = 'HelmError'
  }
}

/** How much of helm's stderr ends up in the message. */
const STDERR_TAIL = 500
/** How much of helm's stderr is kept for the apply report (which sends at most 4,096 characters). */
const STDERR_KEEP = 16 * 1024
/** `helm history -o json` of 256 revisions is well under this; more is not an answer we can trust. */
const STDOUT_MAX = 4 * 1024 * 1024
/** Labels put on the Helm release (Helm >= 3.13), so a person or a tool can select chartcast's releases. */
export const LABEL_VERSION = 'chartcast.io/version'
export const LABEL_DIGEST = 'chartcast.io/digest'

/**
 * Runs `helm upgrade --install`; `--wait --atomic` makes helm roll back itself when the release
 * does not become ready. What chartcast applied is recorded on the Helm release itself, so the
 * cluster, not the agent's state directory, says what runs:
 * - the facts (release version, digest, ...) as the release description (`--description`),
 *   which `helm history -o json` prints for every revision. `helm list` and `helm get metadata`
 *   do not print release labels (Helm 3.13-3.16), so labels cannot be read back with helm alone;
 * - the version and (a 63-character prefix of) the digest as release labels (`--labels`,
 *   Helm >= 3.13), for selecting: `helm list -l chartcast.io/version=1.5.0`.
 */
export class HelmApplier implements Applier {
  readonly name = 'helm'

  constructor (private readonly opts: HelmApplierOptions) {}

  /** The argv after the binary; exported through the class so tests and docs can show it. */
  buildArgs (desired: DesiredState, target: ApplyTarget, valuesFile: string, facts?: ChartcastFacts, verifiedChartFile?: string): string[] {
    const { chart } = desired
    // A verified local archive is installed as it is: no --repo or --version to resolve again.
    const args = ['upgrade', '--install', target.release, verifiedChartFile ?? chartReference(chart)]
    if (verifiedChartFile === undefined) {
      if (!isOci(chart)) args.push('--repo', chart.url)
      args.push('--version', chart.version)
    }
    args.push(
      '--namespace', target.namespace,
      '--create-namespace',
      '-f', valuesFile,
      '--wait',
      '--atomic',
      '--timeout', this.timeoutArg()
    )
    if (facts !== undefined) args.push(...factArgs(facts))
    return args
  }

  /** Go durations have no "d"/"w", so always hand helm whole seconds. */
  private timeoutArg (): string {
    return `${Math.ceil(this.opts.timeoutMs / 1000)}s`
  }

  /** `helm history RELEASE -n NS -o json`: the status of the newest revision and the facts of the one deployed. */
  async observe (target: ApplyTarget): Promise<ObservedRelease> {
    let stdout: string
    try {
      const result = await this.run(['history', target.release, '--namespace', target.namespace, '--output', 'json'])
      if (result.truncated) throw new HelmError(`helm history printed more than ${STDOUT_MAX} bytes`, 0, 'exited with 0')
      stdout = result.stdout
    } catch (err) {
      // helm prints "Error: release: not found" for a release that never existed (or was uninstalled without --keep-history).
      if (err instanceof HelmError && /release: not found/.test(err.stderr)) return { status: 'absent' }
      throw err
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(stdout)
    } catch {
      throw new HelmError('helm history printed something that is not JSON', 0, 'exited with 0')
    }
    return observeHistory(parsed)
  }

  /** `helm rollback RELEASE REVISION`: used for a release stuck in a pending state. */
  async rollback (target: ApplyTarget, revision: number): Promise<void> {
    await this.run(['rollback', target.release, String(revision), '--namespace', target.namespace, '--wait', '--timeout', this.timeoutArg()])
  }

  async apply (desired: DesiredState, target: ApplyTarget, facts?: ChartcastFacts): Promise<void> {
    // Merged values carry secrets (license, passwords): a fresh 0700 directory from mkdtemp
    // and a 0600 file created exclusively, removed whatever happens.
    const dir = await mkdtemp(join(this.opts.tmpDir ?? tmpdir(), 'chartcast-helm-'))
    try {
      const valuesFile = join(dir, 'values.yaml')
      await writeFileDurable(valuesFile, stringify(desired.values), 0o600)
      const chartFile = await this.verifiedChart(desired, dir)
      await this.run(this.buildArgs(desired, target, valuesFile, facts, chartFile))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** With chart.digest, the path of the pulled (or bundled) archive once its digest is checked; src/agent/chart-fetch.ts. */
  private async verifiedChart (desired: DesiredState, dir: string): Promise<string | undefined> {
    const { digest } = desired.chart
    if (digest === undefined) return undefined
    const request: VerifiedChartRequest = { chart: { ...desired.chart, digest }, workDir: dir, runHelm: async (args) => { await this.run(args) } }
    if (desired.chartArchive !== undefined) request.archive = desired.chartArchive
    return await fetchVerifiedChart(request)
  }

  /** Runs helm and resolves to its stdout (at most STDOUT_MAX; `truncated` when it printed more). */
  private run (args: string[]): Promise<{ stdout: string, truncated: boolean }> {
    return new Promise((resolve, reject) => {
      // spawn with an argv array, never a shell: nothing in chart names or values is interpreted.
      const child = spawn(this.opts.helmBin, args, { env: this.opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stdoutOverflow = false
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (chunk: string) => {
        if (stdout.length + chunk.length > STDOUT_MAX) stdoutOverflow = true
        else stdout += chunk
      })
      let stderr = ''
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (chunk: string) => {
        stderr += chunk
        if (stderr.length > STDERR_KEEP) {
          // Drop the partial first line too: a value cut in half could not be recognised and redacted.
          const kept = stderr.slice(-STDERR_KEEP)
          const newline = kept.indexOf('\n')
          stderr = newline === -1 ? '' : kept.slice(newline + 1)
        }
      })
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'EACCES') {
          reject(new ApplierUnavailableError(`helm binary "${this.opts.helmBin}" not found or not executable (${err.code}); install helm, put it on PATH or set HELM_BIN`))
        } else {
          reject(err)
        }
      })
      child.on('close', (code, signal) => {
        if (code === 0) return resolve({ stdout, truncated: stdoutOverflow })
        const tail = stderr.trim().split('\n').slice(-3).join(' | ').slice(-STDERR_TAIL)
        const how = signal !== null ? `was killed by ${signal}` : `exited with ${code}`
        reject(new HelmError(`helm ${how}${tail === '' ? '' : `: ${tail}`}`, code, how, stderr))
      })
    })
  }
}

/** `--labels` and `--description` carrying the facts (see the class comment). */
function factArgs (facts: ChartcastFacts): string[] {
  const labels = `${LABEL_VERSION}=${labelValue(facts.version)},${LABEL_DIGEST}=${labelValue(facts.digest)}`
  return ['--labels', labels, '--description', encodeFacts(facts)]
}

interface HistoryEntry {
  revision: number
  status: string
  updated?: string
  description?: string
}

/** How far a chain of "Rollback to N" descriptions is followed back to the revision that carried the facts. */
const ROLLBACK_HOPS = 20

/**
 * Reads `helm history -o json`: the newest revision's status and time, the facts of the
 * revision deployed now and, when the newest is pending, the revision to roll back to. A
 * revision made by `helm rollback` (or by `--atomic`) is described "Rollback to N"; its facts
 * are those of revision N, followed back as far as the history reaches.
 */
export function observeHistory (raw: unknown): ObservedRelease {
  if (!Array.isArray(raw)) throw new HelmError('helm history -o json did not print a list', 0, 'exited with 0')
  const entries: HistoryEntry[] = []
  for (const item of raw as unknown[]) {
    if (typeof item !== 'object' || item === null) continue
    const e = item as Record<string, unknown>
    const revision = typeof e.revision === 'number' ? e.revision : Number(e.revision)
    if (!Number.isInteger(revision) || revision < 1) continue
    const entry: HistoryEntry = { revision, status: typeof e.status === 'string' ? e.status : 'unknown' }
    if (typeof e.updated === 'string') entry.updated = e.updated
    if (typeof e.description === 'string') entry.description = e.description
    entries.push(entry)
  }
  if (entries.length === 0) return { status: 'absent' }
  entries.sort((a, b) => a.revision - b.revision)
  const byRevision = new Map(entries.map((e) => [e.revision, e]))
  const newest = entries[entries.length - 1] as HistoryEntry
  const observed: ObservedRelease = { status: toReleaseStatus(newest.status), revision: newest.revision }
  const updatedAt = newest.updated === undefined ? NaN : Date.parse(newest.updated)
  if (!Number.isNaN(updatedAt)) observed.updatedAt = updatedAt

  const deployed = [...entries].reverse().find((e) => e.status === 'deployed')
  if (deployed !== undefined) {
    let entry: HistoryEntry | undefined = deployed
    for (let hop = 0; entry !== undefined && hop <= ROLLBACK_HOPS; hop++) {
      const facts = decodeFacts(entry.description)
      if (facts !== undefined) {
        observed.running = facts
        break
      }
      const match = /^Rollback to (\d+)$/.exec(entry.description ?? '')
      entry = match === null ? undefined : byRevision.get(Number(match[1]))
    }
  }
  const previous = [...entries].reverse().find((e) => e.revision < newest.revision && (e.status === 'deployed' || e.status === 'superseded'))
  if (previous !== undefined) observed.rollbackTo = previous.revision
  return observed
}

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

/** Runs `helm upgrade --install`; `--wait --atomic` makes helm roll back itself when the release does not become ready. */
export class HelmApplier implements Applier {
  readonly name = 'helm'

  constructor (private readonly opts: HelmApplierOptions) {}

  /** The argv after the binary; exported through the class so tests and docs can show it. */
  buildArgs (desired: DesiredState, target: ApplyTarget, valuesFile: string, verifiedChartFile?: string): string[] {
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
      // Go durations have no "d"/"w", so always hand helm whole seconds.
      '--timeout', `${Math.ceil(this.opts.timeoutMs / 1000)}s`
    )
    return args
  }

  async apply (desired: DesiredState, target: ApplyTarget): Promise<void> {
    // Merged values carry secrets (license, passwords): a fresh 0700 directory from mkdtemp
    // and a 0600 file created exclusively, removed whatever happens.
    const dir = await mkdtemp(join(this.opts.tmpDir ?? tmpdir(), 'chartcast-helm-'))
    try {
      const valuesFile = join(dir, 'values.yaml')
      await writeFileDurable(valuesFile, stringify(desired.values), 0o600)
      const chartFile = await this.verifiedChart(desired, dir)
      await this.run(this.buildArgs(desired, target, valuesFile, chartFile))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** With chart.digest, the path of the pulled (or bundled) archive once its digest is checked; src/agent/chart-fetch.ts. */
  private async verifiedChart (desired: DesiredState, dir: string): Promise<string | undefined> {
    const { digest } = desired.chart
    if (digest === undefined) return undefined
    const request: VerifiedChartRequest = { chart: { ...desired.chart, digest }, workDir: dir, runHelm: (args) => this.run(args) }
    if (desired.chartArchive !== undefined) request.archive = desired.chartArchive
    return await fetchVerifiedChart(request)
  }

  private run (args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      // spawn with an argv array, never a shell: nothing in chart names or values is interpreted.
      const child = spawn(this.opts.helmBin, args, { env: this.opts.env, stdio: ['ignore', 'ignore', 'pipe'] })
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
        if (code === 0) return resolve()
        const tail = stderr.trim().split('\n').slice(-3).join(' | ').slice(-STDERR_TAIL)
        const how = signal !== null ? `was killed by ${signal}` : `exited with ${code}`
        reject(new HelmError(`helm ${how}${tail === '' ? '' : `: ${tail}`}`, code, how, stderr))
      })
    })
  }
}

import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Applier, ApplyTarget } from '../../src/agent/appliers/types.js'
import { SpecClient } from '../../src/agent/client.js'
import type { DesiredState } from '../../src/agent/desired.js'
import type { InputPaths } from '../../src/agent/inputs.js'
import type { ReleaseLock } from '../../src/agent/lock.js'
import type { Logger } from '../../src/agent/logger.js'
import { Reconciler, type ReconcilerConfig } from '../../src/agent/reconciler.js'
import { Reporter, type ReporterOptions } from '../../src/agent/reporter.js'
import { FileStateStore } from '../../src/agent/state.js'
import type { Sleep } from '../../src/agent/timing.js'

/** Applier that remembers what it was asked to apply; can be told to fail. */
export class RecordingApplier implements Applier {
  readonly name = 'recording'
  readonly applied: Array<{ desired: DesiredState, target: ApplyTarget }> = []
  attempts = 0
  failWith: Error | undefined

  async apply (desired: DesiredState, target: ApplyTarget): Promise<void> {
    this.attempts++
    if (this.failWith !== undefined) throw this.failWith
    this.applied.push({ desired: structuredClone(desired), target })
  }

  get versions (): string[] {
    return this.applied.map((a) => a.desired.version)
  }
}

/** A temp working directory with the files an agent reads. */
export async function workdir (): Promise<{ dir: string, stateDir: string, licenseFile: string, write: (name: string, text: string) => Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-agent-'))
  const write = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name)
    await writeFile(path, text)
    return path
  }
  const licenseFile = await write('license.jwt', 'good-license\n')
  return { dir, stateDir: join(dir, 'state'), licenseFile, write }
}

/**
 * Sleep that returns at once, records each requested delay and runs `between` (e.g. a
 * promotion on the server) before the next cycle; aborts the loop after `cycles` sleeps.
 */
export function scriptedSleep (controller: AbortController, cycles: number, between?: (n: number) => void | Promise<void>): { sleep: Sleep, delays: number[] } {
  const delays: number[] = []
  const sleep: Sleep = async (ms) => {
    delays.push(ms)
    if (delays.length >= cycles) controller.abort()
    else await between?.(delays.length)
  }
  return { sleep, delays }
}

export interface AgentParts {
  server?: string
  channel?: string
  pin?: string
  stateDir: string
  inputs: InputPaths
  applier: Applier
  logger: Logger
  allowDowngrade?: boolean
  intervalMs?: number
  fromFile?: string
  trustRoot?: string
  sleep?: Sleep
  random?: () => number
  /** Post apply reports: `true` for a Reporter on the same client, or options for it. Off when absent. */
  report?: true | Partial<Omit<ReporterOptions, 'client'>>
  /** More reconciler settings (circuit breaker, windows, helm timeout, lock waiting). */
  config?: Partial<ReconcilerConfig>
  lock?: ReleaseLock
  lockRetryMs?: number
  now?: () => number
}

/** A Reconciler wired like the CLI does it, with the real SpecClient and FileStateStore. */
export function makeReconciler (parts: AgentParts): Reconciler {
  const config: ReconcilerConfig = {
    release: 'acme',
    namespace: 'acme-ns',
    allowDowngrade: parts.allowDowngrade ?? false,
    intervalMs: parts.intervalMs,
    fromFile: parts.fromFile,
    ...(parts.trustRoot === undefined ? {} : { trustRoot: parts.trustRoot }),
    server: parts.server,
    channel: parts.channel ?? 'stable',
    pin: parts.pin,
    inputs: parts.inputs,
    ...parts.config
  }
  const client = parts.server === undefined ? undefined : new SpecClient({ server: parts.server, channel: parts.channel ?? 'stable', pin: parts.pin, timeoutMs: 5000 })
  const reporter = client === undefined || parts.report === undefined
    ? undefined
    : new Reporter({ client, logger: parts.logger, ...(parts.report === true ? {} : parts.report) })
  return new Reconciler(config, {
    applier: parts.applier,
    state: new FileStateStore(parts.stateDir),
    logger: parts.logger,
    client,
    reporter,
    sleep: parts.sleep,
    random: parts.random ?? (() => 0.5),
    lock: parts.lock,
    lockRetryMs: parts.lockRetryMs,
    now: parts.now
  })
}

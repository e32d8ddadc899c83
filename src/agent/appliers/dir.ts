import { randomBytes } from 'node:crypto'
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { stringify } from 'yaml'
import type { DesiredState } from '../desired.js'
import { fsyncDir, writeFileDurable } from '../fsutil.js'
import { chartReference } from '../spec.js'
import type { ChartcastFacts, ObservedRelease } from '../truth.js'
import type { Applier, ApplyTarget } from './types.js'

/** The three files of a set, in the order they are written. */
export const SET_FILES = ['spec.json', 'chart.json', 'values.yaml'] as const
export type SetFile = typeof SET_FILES[number]

export interface DirApplierOptions {
  /**
   * Test hook, called after each file of a new set is written. Throwing (or killing the
   * process) here simulates a crash between writes.
   */
  afterWrite?: (file: SetFile) => void | Promise<void>
}

/*
 * Layout of --out, designed so a reader never sees a half-written set:
 *
 *   OUT/sets/<id>/{spec.json,chart.json,values.yaml}   complete, immutable sets
 *   OUT/sets/.tmp-<id>/...                             a set being written (never pointed at)
 *   OUT/current -> sets/<id>                           relative symlink, the only mutable thing
 *   OUT/spec.json -> current/spec.json (etc.)          static convenience links
 *
 * Apply: write all three files into sets/.tmp-<id> (each fsynced), fsync and rename it to
 * sets/<id>, then point a fresh temporary symlink at it and rename() that over `current`.
 * rename(2) replaces `current` atomically, so `current` names the old complete set until the
 * instant it names the new complete set. A crash at any earlier point leaves only a .tmp-
 * directory (or an unreferenced complete set) that the next apply deletes.
 *
 * Readers wanting all three files consistently must resolve `current` once (realpath) and
 * read from that directory; reading OUT/spec.json then OUT/values.yaml could straddle a
 * swap. The previous set is kept for one generation so such a reader is not pulled from
 * under its feet mid-read.
 */
export class DirApplier implements Applier {
  readonly name = 'dir'

  constructor (readonly outDir: string, private readonly opts: DirApplierOptions = {}) {}

  get currentLink (): string {
    return join(this.outDir, 'current')
  }

  /**
   * What the output holds is what is deployed: the facts recorded in `current/spec.json`.
   * After `rm -rf OUT`, or with a new `--out`, nothing is deployed and the next cycle writes.
   */
  async observe (target: ApplyTarget): Promise<ObservedRelease> {
    let text: string
    try {
      text = await readFile(join(this.currentLink, 'spec.json'), 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return { status: 'absent' }
      throw err
    }
    let spec: Record<string, unknown>
    try {
      spec = JSON.parse(text) as Record<string, unknown>
    } catch {
      // Sets are written whole before `current` names them, so this is a hand edit: treat it as nothing we wrote.
      return { status: 'deployed' }
    }
    if (spec.release !== target.release || spec.namespace !== target.namespace) return { status: 'deployed' }
    const facts = typeof spec.facts === 'object' && spec.facts !== null ? spec.facts as Record<string, unknown> : { version: spec.version, digest: spec.digest }
    if (typeof facts.version !== 'string' || typeof facts.digest !== 'string') return { status: 'deployed' }
    const running: ChartcastFacts = { version: facts.version, digest: facts.digest }
    for (const [key, value] of Object.entries(facts)) if (typeof value === 'string') running[key] = value
    return { status: 'deployed', running }
  }

  async apply (desired: DesiredState, target: ApplyTarget, facts?: ChartcastFacts): Promise<void> {
    const setsDir = join(this.outDir, 'sets')
    await mkdir(setsDir, { recursive: true, mode: 0o700 })
    const id = `${Date.now()}-${desired.digest.slice(0, 12)}-${randomBytes(3).toString('hex')}`
    const tmpSet = join(setsDir, `.tmp-${id}`)
    const finalSet = join(setsDir, id)
    const previous = await this.currentTarget()

    await mkdir(tmpSet, { mode: 0o700 })
    try {
      for (const file of SET_FILES) {
        await writeFileDurable(join(tmpSet, file), render(file, desired, target, facts), 0o600)
        await this.opts.afterWrite?.(file)
      }
      await fsyncDir(tmpSet)
      await rename(tmpSet, finalSet)
      await fsyncDir(setsDir)

      const tmpLink = join(this.outDir, `.current-${id}`)
      await symlink(join('sets', id), tmpLink)
      try {
        await rename(tmpLink, this.currentLink)
      } catch (err) {
        await rm(tmpLink, { force: true })
        throw err
      }
      await fsyncDir(this.outDir)
    } catch (err) {
      await rm(tmpSet, { recursive: true, force: true })
      if (await this.currentTarget() !== join('sets', id)) await rm(finalSet, { recursive: true, force: true })
      throw err
    }

    await this.ensureConvenienceLinks()
    await this.prune(setsDir, new Set([id, previous?.replace(/^sets\//, '')].filter((x): x is string => x !== undefined)))
  }

  private async currentTarget (): Promise<string | undefined> {
    try {
      return await readlink(this.currentLink)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /** OUT/<file> -> current/<file>, created once; an existing regular file there is left alone. */
  private async ensureConvenienceLinks (): Promise<void> {
    for (const file of SET_FILES) {
      const path = join(this.outDir, file)
      try {
        await lstat(path)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        await symlink(join('current', file), path)
      }
    }
  }

  /** Removes leftovers of crashed applies and sets older than the previous one. */
  private async prune (setsDir: string, keep: Set<string>): Promise<void> {
    for (const entry of await readdir(setsDir)) {
      if (!keep.has(entry)) await rm(join(setsDir, entry), { recursive: true, force: true })
    }
    for (const entry of await readdir(this.outDir)) {
      if (entry.startsWith('.current-')) await rm(join(this.outDir, entry), { force: true })
    }
  }
}

function render (file: SetFile, desired: DesiredState, target: ApplyTarget, facts: ChartcastFacts = { version: desired.version, digest: desired.digest }): string {
  const chart = { ...desired.chart, reference: chartReference(desired.chart) }
  switch (file) {
    case 'spec.json':
      return JSON.stringify({
        channel: desired.channel,
        version: desired.version,
        release: target.release,
        namespace: target.namespace,
        digest: desired.digest,
        chart,
        values: desired.values,
        facts
      }, null, 2) + '\n'
    case 'chart.json':
      return JSON.stringify(chart, null, 2) + '\n'
    case 'values.yaml':
      return stringify(desired.values)
  }
}

/**
 * A STAND-IN `helm` executable: no Helm binary or Kubernetes cluster exists on our machines,
 * so tests point HELM_BIN at this small node script. It is not Helm; it models just what the
 * agent relies on, kept in a JSON file beside it:
 *
 * - releases per namespace/name with numbered revisions, each with a status (`deployed`,
 *   `superseded`, `failed`, `pending-install`, `pending-upgrade`), an update time, a
 *   description and labels;
 * - `upgrade --install` adds a pending revision, then marks it deployed (the previous one
 *   superseded) or, when told to fail, failed, and with `--atomic` adds a "Rollback to N"
 *   revision as Helm does. It refuses while the newest revision is pending ("another operation
 *   is in progress"), can be told to take a while, or to die by SIGKILL mid-upgrade (leaving
 *   the revision pending);
 * - `history NAME -o json` prints revision, updated, status, chart, app_version, description;
 *   "Error: release: not found" for an unknown release;
 * - `rollback NAME REV` adds a revision copying REV, described "Rollback to REV".
 *
 * Every call's argv is recorded, with a copy of the values file it was given and that file's
 * mode. Two helm processes that overlap in time (for one namespace) are recorded as an overlap.
 *
 * It also stands in for chart repositories: `serveChart` gives it real .tgz files, which
 * `helm pull` copies into `--destination` (http(s) repositories by --repo, name and
 * --version; OCI references by version, or by `@sha256:<manifest digest>`, where the manifest
 * is modelled as OCI's, naming the archive's sha256 as its chart layer). For
 * `upgrade --install` with a local archive it records the sha256 of the file it was given.
 */
import { createHash } from 'node:crypto'
import { chmod, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface HelmCall {
  argv: string[]
  valuesPath: string | null
  values: string | null
  valuesMode: number | null
  /** `upgrade` given a local chart archive: its sha256 (sha256:<hex>) when helm read it. */
  chartFileDigest?: string | null
  /** `pull`: the mode of its --destination directory. */
  destinationMode?: number
}

/** A chart the stand-in serves: `repo` is an http(s) repository URL or the oci:// reference of the chart. */
export interface ServedChart {
  repo: string
  name: string
  version: string
  archive: Uint8Array
}

/** The manifest the stand-in's registry holds for an archive; its digest is what `@sha256:` pulls name. */
export function standinOciManifest (archive: Uint8Array): string {
  const layer = 'sha256:' + createHash('sha256').update(archive).digest('hex')
  return JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.cncf.helm.config.v1+json' }, layers: [{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: layer, size: archive.length }] })
}

export function standinOciManifestDigest (archive: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(standinOciManifest(archive)).digest('hex')
}

export interface StandinRevision {
  revision: number
  status: string
  /** ISO time. */
  updated: string
  description: string
  labels: Record<string, string>
  chart: string
  chartVersion: string
  /** The values file's text. */
  values: string | null
}

export interface StandinBehaviour {
  /** Exit code of `upgrade` (0: success). */
  exitCode: number
  stderr: string
  /** `kill`: the upgrade dies by SIGKILL after writing its pending revision. */
  upgrade?: 'normal' | 'kill'
  /** How long an upgrade takes (ms, a blocking wait inside the stand-in). */
  upgradeMs?: number
  /** Exit code of `rollback` (0: success). */
  rollbackExitCode?: number
}

const SCRIPT = (nodePath: string): string => `#!${nodePath}
'use strict'
const fs = require('fs')
const path = require('path')
const dir = __dirname
const args = process.argv.slice(2)
const behaviour = JSON.parse(fs.readFileSync(path.join(dir, 'behaviour.json'), 'utf8'))
const statePath = path.join(dir, 'releases.json')
const load = () => fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, 'utf8')) : {}
const save = (s) => { fs.writeFileSync(statePath + '.tmp', JSON.stringify(s, null, 2)); fs.renameSync(statePath + '.tmp', statePath) }
const flag = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
const i = args.indexOf('-f')
const valuesPath = i >= 0 ? args[i + 1] : null
let values = null
let valuesMode = null
if (valuesPath) {
  values = fs.readFileSync(valuesPath, 'utf8')
  valuesMode = fs.statSync(valuesPath).mode & 0o777
}
const sha256 = (bytes) => 'sha256:' + require('crypto').createHash('sha256').update(bytes).digest('hex')
const record = { argv: args, valuesPath, values, valuesMode }
if (args[0] === 'pull') record.destinationMode = fs.statSync(flag('--destination')).mode & 0o777
if (args[0] === 'upgrade' && args[3] && args[3].startsWith('/')) {
  record.chartFileDigest = fs.existsSync(args[3]) ? sha256(fs.readFileSync(args[3])) : null
}
const n = fs.readdirSync(dir).filter((f) => f.startsWith('call-')).length
fs.writeFileSync(path.join(dir, 'call-' + String(n).padStart(4, '0') + '-' + process.pid + '.json'), JSON.stringify(record))

const namespace = flag('--namespace') || 'default'
const running = path.join(dir, 'running-' + namespace)
let mine = false
try { fs.writeFileSync(running, String(process.pid), { flag: 'wx' }); mine = true } catch { fs.appendFileSync(path.join(dir, 'overlaps'), args[0] + ' ' + process.pid + '\\n') }
const finish = (code) => { if (mine) fs.rmSync(running, { force: true }); process.exit(code) }
const now = () => new Date().toISOString()
const command = args[0]
const name = command === 'upgrade' ? args[2] : args[1]
const key = namespace + '/' + name
const state = load()
const revisions = state[key] || []
const newest = revisions[revisions.length - 1]

if (command === 'history') {
  if (revisions.length === 0) { process.stderr.write('Error: release: not found\\n'); finish(1) }
  process.stdout.write(JSON.stringify(revisions.map((r) => ({ revision: r.revision, updated: r.updated, status: r.status, chart: r.chart + '-' + r.chartVersion, app_version: '1.0', description: r.description }))))
  finish(0)
} else if (command === 'rollback') {
  const target = revisions.find((r) => r.revision === Number(args[2]))
  if (!target) { process.stderr.write('Error: release has no ' + args[2] + ' version\\n'); finish(1) }
  if (behaviour.rollbackExitCode) { process.stderr.write('Error: rollback failed\\n'); finish(behaviour.rollbackExitCode) }
  for (const r of revisions) if (r.status === 'deployed' || r.status.startsWith('pending-')) r.status = r.status === 'deployed' ? 'superseded' : 'failed'
  revisions.push({ ...target, revision: newest.revision + 1, status: 'deployed', updated: now(), description: 'Rollback to ' + target.revision })
  state[key] = revisions
  save(state)
  finish(0)
} else if (command === 'upgrade') {
  if (newest && newest.status.startsWith('pending-')) { process.stderr.write('Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\\n'); finish(1) }
  const labels = {}
  for (const pair of (flag('--labels') || '').split(',').filter(Boolean)) { const [k, v] = pair.split('='); labels[k] = v }
  const previous = [...revisions].reverse().find((r) => r.status === 'deployed')
  const revision = { revision: newest ? newest.revision + 1 : 1, status: previous ? 'pending-upgrade' : 'pending-install', updated: now(), description: 'Preparing upgrade', labels, chart: args[3].split('/').pop(), chartVersion: flag('--version'), values }
  revisions.push(revision)
  state[key] = revisions
  save(state)
  if (behaviour.upgradeMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, behaviour.upgradeMs)
  if (behaviour.upgrade === 'kill') process.kill(process.pid, 'SIGKILL')
  if (behaviour.exitCode !== 0) {
    revision.status = 'failed'
    revision.description = 'Upgrade "' + name + '" failed: ' + (behaviour.stderr || 'error').trim().slice(0, 200)
    revision.updated = now()
    if (args.includes('--atomic') && previous) {
      previous.status = 'superseded'
      revisions.push({ ...previous, revision: revision.revision + 1, status: 'deployed', updated: now(), description: 'Rollback to ' + previous.revision })
    }
    save(state)
    if (behaviour.stderr) process.stderr.write(behaviour.stderr)
    finish(behaviour.exitCode)
  }
  if (previous) previous.status = 'superseded'
  revision.status = 'deployed'
  revision.updated = now()
  revision.description = flag('--description') || (previous ? 'Upgrade complete' : 'Install complete')
  save(state)
  finish(0)
} else if (command === 'pull') {
  const [ref, pinned] = args[1].split('@')
  const repo = flag('--repo')
  const version = flag('--version')
  const served = (behaviour.charts || []).find((c) => c.version === version && (repo === undefined ? c.repo === ref : c.repo === repo && c.name === ref))
  if (served === undefined) {
    process.stderr.write('Error: chart "' + ref + '" version "' + version + '" not found\\n')
    finish(1)
  }
  const archive = fs.readFileSync(path.join(dir, served.file))
  if (pinned !== undefined) {
    const layer = sha256(archive)
    const manifest = JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.cncf.helm.config.v1+json' }, layers: [{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: layer, size: archive.length }] })
    if (sha256(Buffer.from(manifest)) !== pinned) {
      process.stderr.write('Error: ' + ref + '@' + pinned + ': not found\\n')
      finish(1)
    }
  }
  fs.writeFileSync(path.join(flag('--destination'), served.name + '-' + version + '.tgz'), archive)
  finish(0)
} else {
  process.stderr.write('stand-in helm: unsupported command ' + command + '\\n')
  finish(64)
}
`

export class StandinHelm {
  private constructor (readonly dir: string) {}

  get bin (): string {
    return join(this.dir, 'helm')
  }

  static async create (exitCode = 0): Promise<StandinHelm> {
    const dir = await mkdtemp(join(tmpdir(), 'chartcast-standin-helm-'))
    await writeFile(join(dir, 'helm'), SCRIPT(process.execPath))
    await chmod(join(dir, 'helm'), 0o755)
    const helm = new StandinHelm(dir)
    await helm.behave(exitCode)
    return helm
  }

  private served: Array<Omit<ServedChart, 'archive'> & { file: string }> = []
  private behaviour: Record<string, unknown> = { exitCode: 0, stderr: '' }

  async behave (exitCode: number, stderr = '', more: Omit<StandinBehaviour, 'exitCode' | 'stderr'> = {}): Promise<void> {
    this.behaviour = { exitCode, stderr, ...more }
    await this.writeBehaviour()
  }

  /** From now on `helm pull` of this chart gets these bytes (a later call for the same chart replaces them). */
  async serveChart (chart: ServedChart): Promise<void> {
    const file = `served-${this.served.length}.tgz`
    await writeFile(join(this.dir, file), chart.archive)
    this.served = [{ repo: chart.repo, name: chart.name, version: chart.version, file }, ...this.served]
    await this.writeBehaviour()
  }

  private async writeBehaviour (): Promise<void> {
    await writeFile(join(this.dir, 'behaviour.json'), JSON.stringify({ ...this.behaviour, charts: this.served }))
  }

  /** All calls, in the order they started. */
  async calls (): Promise<HelmCall[]> {
    const files = (await readdir(this.dir)).filter((f) => f.startsWith('call-')).sort()
    return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(this.dir, f), 'utf8')) as HelmCall))
  }

  /** Calls that can change something: all but `history`, which the agent reads before every decision. */
  async changingCalls (): Promise<HelmCall[]> {
    return (await this.calls()).filter((c) => c.argv[0] !== 'history')
  }

  /** Calls of one helm command (`upgrade`, `history`, `rollback`). */
  async callsOf (command: string): Promise<HelmCall[]> {
    return (await this.calls()).filter((c) => c.argv[0] === command)
  }

  /** The modelled revisions of a release, oldest first. */
  async revisions (release: string, namespace: string): Promise<StandinRevision[]> {
    const state = await this.state()
    return state[`${namespace}/${release}`] ?? []
  }

  /** Replaces a release's revisions (e.g. to model one left pending by a killed helm). */
  async setRevisions (release: string, namespace: string, revisions: StandinRevision[]): Promise<void> {
    const state = await this.state()
    state[`${namespace}/${release}`] = revisions
    await writeFile(join(this.dir, 'releases.json'), JSON.stringify(state, null, 2))
  }

  /** Lines recorded when a helm process started while another was still running. */
  async overlaps (): Promise<string[]> {
    try {
      return (await readFile(join(this.dir, 'overlaps'), 'utf8')).split('\n').filter(Boolean)
    } catch {
      return []
    }
  }

  private async state (): Promise<Record<string, StandinRevision[]>> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'releases.json'), 'utf8')) as Record<string, StandinRevision[]>
    } catch {
      return {}
    }
  }
}

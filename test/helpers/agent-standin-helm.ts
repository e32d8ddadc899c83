/**
 * A STAND-IN `helm` executable: no Helm binary or Kubernetes cluster exists on our machines,
 * so tests point HELM_BIN at this small node script. It records its argv, a copy of the
 * values file it was given and that file's mode, then exits with a configurable code.
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

const SCRIPT = (nodePath: string): string => `#!${nodePath}
'use strict'
const fs = require('fs')
const path = require('path')
const dir = __dirname
const args = process.argv.slice(2)
const behaviour = JSON.parse(fs.readFileSync(path.join(dir, 'behaviour.json'), 'utf8'))
const i = args.indexOf('-f')
const valuesPath = i >= 0 ? args[i + 1] : null
let values = null
let valuesMode = null
if (valuesPath) {
  values = fs.readFileSync(valuesPath, 'utf8')
  valuesMode = fs.statSync(valuesPath).mode & 0o777
}
const flag = (name) => { const k = args.indexOf(name); return k >= 0 ? args[k + 1] : undefined }
const sha256 = (bytes) => 'sha256:' + require('crypto').createHash('sha256').update(bytes).digest('hex')
const record = { argv: args, valuesPath, values, valuesMode }
if (args[0] === 'pull') record.destinationMode = fs.statSync(flag('--destination')).mode & 0o777
if (args[0] === 'upgrade' && args[3] && args[3].startsWith('/')) {
  record.chartFileDigest = fs.existsSync(args[3]) ? sha256(fs.readFileSync(args[3])) : null
}
const n = fs.readdirSync(dir).filter((f) => f.startsWith('call-')).length
fs.writeFileSync(path.join(dir, 'call-' + String(n).padStart(4, '0') + '.json'), JSON.stringify(record))
if (args[0] === 'pull') {
  const [ref, pinned] = args[1].split('@')
  const repo = flag('--repo')
  const version = flag('--version')
  const served = (behaviour.charts || []).find((c) => c.version === version && (repo === undefined ? c.repo === ref : c.repo === repo && c.name === ref))
  if (served === undefined) {
    process.stderr.write('Error: chart "' + ref + '" version "' + version + '" not found\\n')
    process.exit(1)
  }
  const archive = fs.readFileSync(path.join(dir, served.file))
  if (pinned !== undefined) {
    const layer = sha256(archive)
    const manifest = JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.cncf.helm.config.v1+json' }, layers: [{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: layer, size: archive.length }] })
    if (sha256(Buffer.from(manifest)) !== pinned) {
      process.stderr.write('Error: ' + ref + '@' + pinned + ': not found\\n')
      process.exit(1)
    }
  }
  fs.writeFileSync(path.join(flag('--destination'), served.name + '-' + version + '.tgz'), archive)
  process.exit(0)
}
if (behaviour.stderr) process.stderr.write(behaviour.stderr)
process.exit(behaviour.exitCode)
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
  private behaviour = { exitCode: 0, stderr: '' }

  async behave (exitCode: number, stderr = ''): Promise<void> {
    this.behaviour = { exitCode, stderr }
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

  async calls (): Promise<HelmCall[]> {
    const files = (await readdir(this.dir)).filter((f) => f.startsWith('call-')).sort()
    return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(this.dir, f), 'utf8')) as HelmCall))
  }
}

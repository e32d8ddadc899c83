/**
 * A STAND-IN `helm` executable: no Helm binary or Kubernetes cluster exists on our machines,
 * so tests point HELM_BIN at this small node script. It records its argv, a copy of the
 * values file it was given and that file's mode, then exits with a configurable code.
 */
import { chmod, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface HelmCall {
  argv: string[]
  valuesPath: string | null
  values: string | null
  valuesMode: number | null
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
const n = fs.readdirSync(dir).filter((f) => f.startsWith('call-')).length
fs.writeFileSync(path.join(dir, 'call-' + String(n).padStart(4, '0') + '.json'), JSON.stringify({ argv: args, valuesPath, values, valuesMode }))
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

  async behave (exitCode: number, stderr = ''): Promise<void> {
    await writeFile(join(this.dir, 'behaviour.json'), JSON.stringify({ exitCode, stderr }))
  }

  async calls (): Promise<HelmCall[]> {
    const files = (await readdir(this.dir)).filter((f) => f.startsWith('call-')).sort()
    return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(this.dir, f), 'utf8')) as HelmCall))
  }
}

import { isPlainObject, type Values } from '../domain/values.js'
import { ConfigError } from './errors.js'
import { parseChartFromConfig, type ChartRef } from './spec.js'
import { readText, readYamlMapping } from './yaml.js'

/** What the operator supplies locally, re-read every cycle so a remounted Secret/ConfigMap is picked up. */
export interface LocalInputs {
  userValues: Values
  crValues: Values
  /** A chart in the custom resource replaces the channel's chart as a whole. */
  crChart?: ChartRef
  /** Never logged. Undefined in air-gapped mode, where no server is contacted. */
  license?: string
}

export interface InputPaths {
  userValues?: string
  cr?: string
  licenseFile?: string
  /** False for `--from-file`: nothing is sent anywhere, so no license is needed. */
  needLicense: boolean
}

const CR_API_GROUP = 'apps.wandb.com/'
const CR_KIND = 'WeightsAndBiases'

interface CustomResource {
  values: Values
  chart?: ChartRef
}

/**
 * A `--cr` file is either a plain values document or a WeightsAndBiases-style resource.
 * A document that looks like some *other* Kubernetes resource is refused instead of being
 * merged as values, because that is almost certainly the wrong file.
 */
export function parseCustomResource (doc: Values, source: string): CustomResource {
  const { apiVersion, kind } = doc
  if (apiVersion === undefined && kind === undefined) return { values: doc }
  if (typeof apiVersion !== 'string' || !apiVersion.startsWith(CR_API_GROUP) || kind !== CR_KIND) {
    throw new ConfigError(`${source}: expected kind ${CR_KIND} (apiVersion ${CR_API_GROUP}v1) or a plain values file, got ${String(kind)} ${String(apiVersion)}`)
  }
  const spec = doc.spec ?? {}
  if (!isPlainObject(spec)) throw new ConfigError(`${source}: spec must be a mapping`)
  const values = spec.values ?? {}
  if (!isPlainObject(values)) throw new ConfigError(`${source}: spec.values must be a mapping`)
  const result: CustomResource = { values }
  if (spec.chart !== undefined && spec.chart !== null) result.chart = parseChartFromConfig(spec.chart, `${source} spec.chart`)
  return result
}

/** `global.license` of the CR's values layer, used when no --license-file is given. */
export function licenseFromValues (values: Values): string | undefined {
  const global = values.global
  if (!isPlainObject(global)) return undefined
  const license = global.license
  return typeof license === 'string' && license.trim() !== '' ? license.trim() : undefined
}

export async function readLocalInputs (paths: InputPaths): Promise<LocalInputs> {
  const userValues = paths.userValues === undefined ? {} : await readYamlMapping(paths.userValues, 'user values')
  let cr: CustomResource = { values: {} }
  if (paths.cr !== undefined) cr = parseCustomResource(await readYamlMapping(paths.cr, 'custom resource'), `custom resource ${paths.cr}`)

  const inputs: LocalInputs = { userValues, crValues: cr.values }
  if (cr.chart !== undefined) inputs.crChart = cr.chart
  if (!paths.needLicense) return inputs

  if (paths.licenseFile !== undefined) {
    const license = (await readText(paths.licenseFile, 'license file')).trim()
    if (license === '') throw new ConfigError(`license file ${paths.licenseFile} is empty`)
    inputs.license = license
  } else {
    inputs.license = licenseFromValues(cr.values)
    if (inputs.license === undefined) {
      throw new ConfigError('no license: give --license-file, or a --cr whose spec.values.global.license is set')
    }
  }
  // A license is a bearer token in a header; a newline in it would be a header injection.
  if (/[\r\n]/.test(inputs.license)) throw new ConfigError('license must be a single line')
  return inputs
}

import { readFile } from 'node:fs/promises'
import { findForbiddenKey, isPlainObject, type Values } from '../domain/values.js'
import { describeYamlError, parseUntrustedYaml, YamlInputError } from '../domain/yaml.js'
import { ConfigError, errorMessage } from './errors.js'

/**
 * Operator- or server-supplied YAML (or JSON, which YAML 1.2 contains) as plain data, through
 * the same strict parser the server uses for request bodies; prototype keys refused.
 */
export function parseYamlData (text: string, source: string): unknown {
  let data: unknown
  try {
    data = parseUntrustedYaml(text)
  } catch (err) {
    if (err instanceof YamlInputError) throw new ConfigError(`${source}: invalid YAML: ${describeYamlError(err)}`)
    throw err
  }
  const forbidden = findForbiddenKey(data)
  if (forbidden !== null) throw new ConfigError(`${source}: key "${forbidden}" is not allowed`)
  return data
}

/** A YAML mapping (an empty document counts as `{}`), e.g. a values file. */
export function parseYamlMapping (text: string, source: string): Values {
  const data = parseYamlData(text, source)
  if (data === null || data === undefined) return {}
  if (!isPlainObject(data)) throw new ConfigError(`${source}: expected a YAML mapping at the top level`)
  return data
}

export async function readYamlMapping (path: string, what: string): Promise<Values> {
  return parseYamlMapping(await readText(path, what), `${what} ${path}`)
}

export async function readText (path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ConfigError(`cannot read ${what} ${path}: ${code ?? errorMessage(err)}`, { cause: err })
  }
}

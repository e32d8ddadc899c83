import { readFile } from 'node:fs/promises'
import { parseDocument } from 'yaml'
import { findForbiddenKey, isPlainObject, type Values } from '../domain/values.js'
import { ConfigError, errorMessage } from './errors.js'

/**
 * Aliases are legitimate in hand-written values files, but a handful is plenty; a small
 * cap stops "billion laughs" expansion before it costs memory.
 */
const MAX_ALIAS_COUNT = 50

/**
 * Parses YAML (or JSON, which YAML 1.2 contains) from an operator- or server-supplied
 * document into plain JSON data, refusing anything that is not: no custom tags, no YAML 1.1
 * extras (`!!binary`, `!!set`, `!!timestamp` would yield Uint8Array/Set/Date), no `<<`
 * merge keys, duplicate keys rejected, and any warning (e.g. an unknown `!tag`) treated
 * as an error rather than silently turned into a string.
 */
export function parseYamlData (text: string, source: string): unknown {
  const doc = parseDocument(text, {
    version: '1.2',
    schema: 'core',
    customTags: [],
    resolveKnownTags: false,
    merge: false,
    uniqueKeys: true,
    prettyErrors: false
  })
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem !== undefined) throw new ConfigError(`${source}: invalid YAML: ${problem.message.split('\n')[0]}`)
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (err) {
    throw new ConfigError(`${source}: invalid YAML: ${errorMessage(err)}`)
  }
  const notJson = findNonJson(data, [])
  if (notJson !== null) throw new ConfigError(`${source}: value at "${notJson}" is not plain data`)
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

function findNonJson (value: unknown, path: string[]): string | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null
  if (typeof value === 'number') return Number.isFinite(value) ? null : path.join('.') || '(root)'
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNonJson(value[i], [...path, String(i)])
      if (found !== null) return found
    }
    return null
  }
  if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      const found = findNonJson(value[key], [...path, key])
      if (found !== null) return found
    }
    return null
  }
  return path.join('.') || '(root)'
}

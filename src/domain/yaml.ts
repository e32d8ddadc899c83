/**
 * YAML as untrusted input, for request bodies, channel files and the agent's values files:
 * YAML 1.2 core schema only, so plain JSON data comes out. No custom tags (`!!js/function`),
 * no YAML 1.1 extras (`!!binary`, `!!set`, `!!timestamp` would yield Uint8Array/Set/Date),
 * no `<<` merge keys, duplicate keys refused, every warning treated as an error, and alias
 * expansion capped so a "billion laughs" document fails fast instead of eating memory.
 */
import { LineCounter, parseDocument } from 'yaml'
import { isPlainObject } from './values.js'

export class YamlInputError extends Error {
  constructor (message: string, readonly line: number | null, readonly column: number | null) {
    super(message)
    this.name = 'YamlInputError'
  }
}

/** Hand-written values use a few anchors at most; this cap is far above that and far below a bomb. */
const MAX_ALIAS_COUNT = 50

export function parseUntrustedYaml (text: string): unknown {
  // With prettyErrors off, errors carry no line; the LineCounter turns their offset into one.
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter,
    version: '1.2',
    schema: 'core',
    customTags: [],
    resolveKnownTags: false,
    merge: false,
    uniqueKeys: true,
    stringKeys: true,
    strict: true,
    prettyErrors: false
  })
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem !== undefined) {
    const pos = lineCounter.linePos(problem.pos[0])
    throw new YamlInputError(problem.message.split('\n')[0] ?? problem.message, pos.line, pos.col)
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (error) {
    throw new YamlInputError(error instanceof Error ? error.message : 'YAML cannot be converted', null, null)
  }
  // `.inf` and `.nan` are valid YAML but have no JSON form: stored as JSON they would silently become null.
  const notJson = findNonJsonValue(data, [])
  if (notJson !== null) throw new YamlInputError(`the value at "${notJson}" is not plain data (JSON has no infinity or NaN)`, null, null)
  return data
}

export function describeYamlError (error: YamlInputError): string {
  return error.line === null ? error.message : `line ${error.line}, column ${error.column}: ${error.message}`
}

function findNonJsonValue (value: unknown, path: string[]): string | null {
  if (value === null || value === undefined || typeof value === 'string' || typeof value === 'boolean') return null
  if (typeof value === 'number') return Number.isFinite(value) ? null : path.join('.') || '(root)'
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNonJsonValue(value[i], [...path, String(i)])
      if (found !== null) return found
    }
    return null
  }
  if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      const found = findNonJsonValue(value[key], [...path, key])
      if (found !== null) return found
    }
    return null
  }
  return path.join('.') || '(root)'
}

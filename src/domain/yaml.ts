/**
 * YAML as untrusted input: the core schema only (no custom tags such as !!js/function),
 * duplicate keys refused, and alias expansion capped so a "billion laughs" document
 * fails fast instead of eating memory.
 */
import { LineCounter, parseDocument } from 'yaml'

export class YamlInputError extends Error {
  constructor (message: string, readonly line: number | null, readonly column: number | null) {
    super(message)
    this.name = 'YamlInputError'
  }
}

const MAX_ALIAS_COUNT = 100

export function parseUntrustedYaml (text: string): unknown {
  // resolveKnownTags: false, or the core schema still resolves !!binary, !!set, !!omap, !!pairs, !!timestamp.
  // With prettyErrors off, errors carry no line; the LineCounter turns their offset into one.
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { schema: 'core', customTags: [], resolveKnownTags: false, uniqueKeys: true, prettyErrors: false, strict: true, stringKeys: true, lineCounter })
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem !== undefined) {
    const pos = lineCounter.linePos(problem.pos[0])
    throw new YamlInputError(problem.message.split('\n')[0] ?? problem.message, pos.line, pos.col)
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (error) {
    throw new YamlInputError(error instanceof Error ? error.message : 'YAML cannot be converted', null, null)
  }
}

export function describeYamlError (error: YamlInputError): string {
  return error.line === null ? error.message : `line ${error.line}, column ${error.column}: ${error.message}`
}

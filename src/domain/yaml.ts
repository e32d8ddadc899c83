/**
 * YAML as untrusted input, for request bodies, channel files and the agent's values files:
 * YAML 1.2 core schema only, so plain JSON data comes out. No custom tags (`!!js/function`),
 * no YAML 1.1 extras (`!!binary`, `!!set`, `!!timestamp` would yield Uint8Array/Set/Date),
 * no `<<` merge keys, duplicate keys refused, every warning treated as an error, and alias
 * expansion capped so a "billion laughs" document fails fast instead of eating memory.
 */
import { isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument } from 'yaml'
import { isPlainObject } from './values.js'

export class YamlInputError extends Error {
  constructor (message: string, readonly line: number | null, readonly column: number | null) {
    super(message)
    this.name = 'YamlInputError'
  }
}

/** A document over one of the optional limits of parseUntrustedYaml. */
export class YamlLimitError extends YamlInputError {
  constructor (message: string, readonly limit: 'tokens' | 'nodes' | 'depth') {
    super(message, null, null)
    this.name = 'YamlLimitError'
  }
}

/** Bounds for YAML from the network; files on disk are parsed without them. */
export interface YamlLimits {
  /**
   * Lexical tokens, counted before the document is built (parsing costs per token); a token
   * inside a flow collection (`[...]`, `{...}`) counts two, see countYamlTokens.
   */
  maxTokens: number
  /** Values in the document, an alias counting as the values it copies. */
  maxNodes: number
  maxDepth: number
}

/** Hand-written values use a few anchors at most; this cap is far above that and far below a bomb. */
const MAX_ALIAS_COUNT = 50

export function parseUntrustedYaml (text: string, limits?: YamlLimits): unknown {
  if (limits !== undefined && countYamlTokens(text, limits.maxTokens) > limits.maxTokens) {
    throw new YamlLimitError(`YAML has more than ${limits.maxTokens} tokens (one inside [ ] or { } counts two); send large bodies as JSON`, 'tokens')
  }
  // With prettyErrors off, errors carry no line; the LineCounter turns their offset into one.
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {
    lineCounter,
    version: '1.2',
    schema: 'core',
    customTags: [],
    resolveKnownTags: false,
    merge: false,
    // The library's own duplicate check compares each key with every earlier one (quadratic:
    // 20,000 keys took seconds); checkDocument below does it with one Set per map.
    uniqueKeys: false,
    stringKeys: true,
    strict: true,
    prettyErrors: false
  })
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem !== undefined) {
    const pos = lineCounter.linePos(problem.pos[0])
    throw new YamlInputError(problem.message.split('\n')[0] ?? problem.message, pos.line, pos.col)
  }
  checkDocument(doc.contents, lineCounter, limits)
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

/**
 * The lexical tokens of a YAML text, as the token limit counts them, stopping once past `stopAbove`.
 * The lexer alone is several times cheaper than building the document. A token inside a flow
 * collection counts two: the library's parser spends about twice as long on each (a flow list of
 * 5,300 items took 80 ms of CPU to parse, 2,280 `key: value` lines of as many tokens about 45 ms),
 * so the costliest body under the limit is no longer a flow list (bench/README.md, hostile bodies).
 */
export function countYamlTokens (text: string, stopAbove = Infinity): number {
  let tokens = 0
  let flowDepth = 0
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') flowDepth++
    tokens += flowDepth > 0 ? 2 : 1
    if ((token === ']' || token === '}') && flowDepth > 0) flowDepth--
    if (tokens > stopAbove) break
  }
  return tokens
}

type Frame = { node: unknown, depth: number } | { anchorEnd: string, nodesBefore: number }

/**
 * One iterative walk over the composed document, in document order: duplicate keys (the
 * second occurrence is reported), and with limits the value count (an alias counts as the
 * values of its anchor, so a few aliases of a large anchor cannot multiply the result) and
 * depth, all before toJS builds anything.
 */
function checkDocument (root: unknown, lineCounter: LineCounter, limits: YamlLimits | undefined): void {
  const stack: Frame[] = [{ node: root, depth: 1 }]
  const anchorSizes = new Map<string, number>()
  let nodes = 0
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    if ('anchorEnd' in frame) {
      anchorSizes.set(frame.anchorEnd, nodes - frame.nodesBefore)
      continue
    }
    const { node, depth } = frame
    if (node === null || node === undefined) continue
    if (isAlias(node)) {
      nodes += anchorSizes.get(node.source) ?? 1
      // Refused as malformed, like the library's own alias-count check: the billion-laughs shape.
      if (limits !== undefined && nodes > limits.maxNodes) throw new YamlInputError(`aliases expand the document beyond ${limits.maxNodes} values`, null, null)
      continue
    }
    nodes += 1
    if (limits !== undefined && nodes > limits.maxNodes) throw new YamlLimitError(`YAML has more than ${limits.maxNodes} values`, 'nodes')
    if (!isMap(node) && !isSeq(node)) continue
    if (limits !== undefined && depth > limits.maxDepth) throw new YamlLimitError(`YAML is nested deeper than ${limits.maxDepth} levels`, 'depth')
    if (node.anchor !== undefined) stack.push({ anchorEnd: node.anchor, nodesBefore: nodes - 1 })
    if (isMap(node)) {
      const seen = new Set<string>()
      for (const pair of node.items) {
        // stringKeys has already refused any key that is not a string scalar.
        if (!isScalar(pair.key)) continue
        const key = String(pair.key.value)
        if (seen.has(key)) {
          const pos = lineCounter.linePos(pair.key.range?.[0] ?? 0)
          const shown = key.length > 64 ? `${key.slice(0, 64)}...` : key
          throw new YamlInputError(`Map keys must be unique; "${shown}" is repeated`, pos.line, pos.col)
        }
        seen.add(key)
      }
      for (let i = node.items.length - 1; i >= 0; i--) stack.push({ node: node.items[i]!.value, depth: depth + 1 })
    } else {
      for (let i = node.items.length - 1; i >= 0; i--) stack.push({ node: node.items[i], depth: depth + 1 })
    }
  }
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

/**
 * How much structure an untrusted request body may carry, and the one walk that checks a
 * parsed body against it. Every later step (schema validation, key checks, canonical JSON,
 * values merge) is linear in the node count, so bounding nodes and depth bounds their cost
 * whatever shape a 1 MiB body takes.
 */
import { ChartcastError } from '../errors.js'

/**
 * Helm values are a handful of levels deep. A body nested deeper is refused by this iterative
 * walk before any recursive one (key check, canonical JSON, merge) overflows the stack: a
 * 20 kB body of "[[[[..." otherwise ended as a 500.
 */
export const MAX_BODY_DEPTH = 64

/**
 * Values (maps, lists and scalars; a map with k keys is 1 + k) in one body. A generous Helm
 * values file has a few thousand; a 1 MiB JSON list of zeros has half a million.
 */
export const MAX_BODY_NODES = 20_000

/**
 * Lexical tokens (scalars, indicators, indentation, line breaks, comments) in one YAML body,
 * counted before the document is built: the YAML library costs a few microseconds per token,
 * so a dense body would otherwise block the event loop for seconds. A token inside a flow
 * collection (`[...]`, `{...}`) counts two, as the parser spends about twice as long on it
 * (src/domain/yaml.ts countYamlTokens). A `key: value` line is about 7 tokens, so this is some
 * 2,280 lines, or a flow list of some 2,660 items (a comment line is 2); larger bodies can be
 * sent as JSON. Counted once, a flow list of 5,300 items fitted and took about 80 ms of CPU,
 * close to the 100 ms a body may cost (bench/README.md, hostile bodies).
 */
export const MAX_YAML_BODY_TOKENS = 16_000

/**
 * YAML bodies are hand-written values; the YAML library resolves a double-quoted scalar one
 * character at a time (about 0.1 us each), so a YAML body is held to a quarter of the default
 * BODY_LIMIT. JSON bodies, parsed natively, may use all of BODY_LIMIT.
 */
export const MAX_YAML_BODY_BYTES = 262_144

const TOO_COMPLEX = (maxNodes: number): ChartcastError => new ChartcastError('BODY_TOO_COMPLEX', `request body has more than ${maxNodes} values (map entries, list items and scalars count one each)`)
const TOO_DEEP = (maxDepth: number): ChartcastError => new ChartcastError('VALIDATION_FAILED', `request body is nested deeper than ${maxDepth} levels`)

/**
 * Counts the values and nesting of JSON text in one pass over its characters, before
 * JSON.parse: parsing an object of 100,000 keys or 500,000 nested lists costs far more than
 * this scan. Exact for valid JSON (one value per container, per comma, and the root; an empty
 * container has no first value); invalid JSON is left for JSON.parse to refuse.
 */
export function checkJsonTextShape (text: string, limits: { maxDepth: number, maxNodes: number } = { maxDepth: MAX_BODY_DEPTH, maxNodes: MAX_BODY_NODES }): void {
  let nodes = 1
  let depth = 0
  let inString = false
  let afterOpener = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: the next character is escaped
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue
    if (afterOpener) {
      afterOpener = false
      if (c === 0x5d || c === 0x7d) nodes -= 1
    }
    if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) { // [ {
      if (++depth > limits.maxDepth) throw TOO_DEEP(limits.maxDepth)
      nodes += 1
      afterOpener = true
      continue // counted once the next character shows whether the container is empty
    } else if (c === 0x5d || c === 0x7d) { // ] }
      depth -= 1
    } else if (c === 0x2c) { // ,
      nodes += 1
    } else {
      continue
    }
    if (nodes > limits.maxNodes) throw TOO_COMPLEX(limits.maxNodes)
  }
}

interface Frame { value: unknown, depth: number, parent: Frame | null, key: string | number }

function pathOf (frame: Frame): string {
  const keys: Array<string | number> = []
  for (let f: Frame | null = frame; f !== null && f.parent !== null; f = f.parent) keys.push(f.key)
  return keys.reverse().join('.') || '(root)'
}

/**
 * Refuses a parsed body that is nested deeper than MAX_BODY_DEPTH (400 VALIDATION_FAILED),
 * has more than MAX_BODY_NODES values (413 BODY_TOO_COMPLEX) or holds a number that is not
 * finite (400 VALIDATION_FAILED): JSON.parse turns 1e309 into Infinity, which would be stored
 * as null, and a null value deletes the key it layers over.
 */
export function checkBodyShape (body: unknown, limits: { maxDepth: number, maxNodes: number } = { maxDepth: MAX_BODY_DEPTH, maxNodes: MAX_BODY_NODES }): void {
  const stack: Frame[] = [{ value: body, depth: 1, parent: null, key: '' }]
  let nodes = 0
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    const { value, depth } = frame
    nodes += 1
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new ChartcastError('VALIDATION_FAILED', `the number at "${pathOf(frame)}" is out of range (JSON numbers must be finite)`)
      continue
    }
    if (value === null || typeof value !== 'object') continue
    if (depth > limits.maxDepth) throw TOO_DEEP(limits.maxDepth)
    const keys = Array.isArray(value) ? null : Object.keys(value)
    const children = keys === null ? (value as unknown[]).length : keys.length
    // Every frame on the stack is counted once popped, so the limit is checked before pushing:
    // a list of half a million items is refused without allocating a frame for each.
    if (nodes + stack.length + children > limits.maxNodes) throw TOO_COMPLEX(limits.maxNodes)
    for (let i = children - 1; i >= 0; i--) {
      const key = keys === null ? i : keys[i]!
      const child = keys === null ? (value as unknown[])[i] : (value as Record<string, unknown>)[key as string]
      stack.push({ value: child, depth: depth + 1, parent: frame, key })
    }
  }
}

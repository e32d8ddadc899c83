/**
 * Text the database can store. PostgreSQL `text` and `jsonb` refuse U+0000 (SQLSTATE 22P05), and
 * an unpaired UTF-16 surrogate has no UTF-8 form (the driver turns it into U+FFFD in `text`,
 * and `jsonb` refuses its `\ud800` escape). Such strings are refused at the request boundary
 * with the path of the first one, so nothing half-stored or silently altered ever reaches a row.
 */
import { ChartcastError } from '../errors.js'

/** With the `u` flag a character class matches whole code points, so only lone surrogates hit the range. */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what is looked for
const UNSTORABLE_CHARACTER = /[\u0000\uD800-\uDFFF]/u
// eslint-disable-next-line no-control-regex -- as above
const UNSTORABLE_CHARACTERS = /[\u0000\uD800-\uDFFF]/gu

export interface UnstorableText {
  /** Keys and array indices from the root to the string (for a key: to the key itself). */
  path: string[]
  /** Whether the offending string is an object key rather than a value. */
  inKey: boolean
  /** The first offending UTF-16 code unit. */
  codeUnit: number
}

/** The first character of `text` that cannot be stored, or null. */
export function unstorableCodeUnit (text: string): number | null {
  const match = UNSTORABLE_CHARACTER.exec(text)
  return match === null ? null : match[0].charCodeAt(0)
}

interface Pending { value: unknown, key: string | null, parent: Pending | null }

function pathOf (node: Pending): string[] {
  const path: string[] = []
  for (let n: Pending | null = node; n !== null && n.key !== null; n = n.parent) path.push(n.key)
  return path.reverse()
}

/**
 * Walks JSON-like data (objects, arrays, scalars) without recursion, so depth costs no stack,
 * and returns the first string value or key holding U+0000 or an unpaired surrogate.
 */
export function findUnstorableText (value: unknown): UnstorableText | null {
  const stack: Pending[] = [{ value, key: null, parent: null }]
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    const current = node.value
    if (typeof current === 'string') {
      const codeUnit = unstorableCodeUnit(current)
      if (codeUnit !== null) return { path: pathOf(node), inKey: false, codeUnit }
    } else if (Array.isArray(current)) {
      // Pushed in reverse so the first offending element in document order is the one reported.
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], key: String(i), parent: node })
    } else if (current !== null && typeof current === 'object') {
      const keys = Object.keys(current)
      for (const key of keys) {
        const codeUnit = unstorableCodeUnit(key)
        if (codeUnit !== null) return { path: [...pathOf(node), key], inKey: true, codeUnit }
      }
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!
        stack.push({ value: (current as Record<string, unknown>)[key], key, parent: node })
      }
    }
  }
  return null
}

/** A path for messages: dotted, with the characters that could not be stored written as \uXXXX. */
export function describeTextPath (path: string[]): string {
  return path.map((part) => part.replace(UNSTORABLE_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)).join('.')
}

export function describeUnstorableText (found: UnstorableText, root = ''): string {
  const where = describeTextPath(root === '' ? found.path : [root, ...found.path]) || 'the text'
  const unit = found.codeUnit.toString(16).toUpperCase().padStart(4, '0')
  const character = found.codeUnit === 0 ? 'a NUL character (U+0000)' : `an unpaired surrogate (U+${unit})`
  return found.inKey
    ? `the key ${where} contains ${character}, which cannot be stored`
    : `${where} contains ${character}, which cannot be stored`
}

/**
 * Refuses a request whose parts (body, query, params) hold unstorable text, naming the first
 * one as `body.values.x`, `query.reason`, ...
 */
export function checkStorableText (parts: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(parts)) {
    const found = findUnstorableText(value)
    if (found !== null) throw new ChartcastError('VALIDATION_FAILED', describeUnstorableText(found, name))
  }
}

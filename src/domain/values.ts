/**
 * Helm-style values layering.
 *
 * A higher layer wins: maps merge key by key, recursively; arrays and scalars from the
 * higher layer replace what is below; a `null` in the higher layer removes the key, as
 * `helm upgrade -f` does. (The W&B operator concatenates arrays instead; we deliberately
 * follow Helm so that what an operator reads in a values file is what gets applied.)
 */
export type Values = { [key: string]: unknown }

/** Keys that would reach Object.prototype through a naive merge; refused everywhere. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

export function isPlainObject (value: unknown): value is Values {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Returns the dotted path of the first forbidden key at any depth, or null when there is none. */
export function findForbiddenKey (value: unknown, path: string[] = []): string | null {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findForbiddenKey(value[i], [...path, String(i)])
      if (found !== null) return found
    }
    return null
  }
  if (value !== null && typeof value === 'object') {
    // Object.keys misses nothing here: JSON.parse and YAML create own enumerable keys,
    // including a literal "__proto__" key.
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) return [...path, key].join('.')
      const found = findForbiddenKey((value as Values)[key], [...path, key])
      if (found !== null) return found
    }
  }
  return null
}

export class ForbiddenKeyError extends Error {
  constructor (readonly path: string) {
    super(`key "${path}" is not allowed in values`)
    this.name = 'ForbiddenKeyError'
  }
}

/** Layers `higher` over `lower`; neither input is modified. */
export function mergeValues (lower: Values, higher: Values): Values {
  const result: Values = {}
  for (const key of Object.keys(lower)) {
    if (FORBIDDEN_KEYS.has(key)) throw new ForbiddenKeyError(key)
    result[key] = lower[key]
  }
  for (const key of Object.keys(higher)) {
    if (FORBIDDEN_KEYS.has(key)) throw new ForbiddenKeyError(key)
    const high = higher[key]
    if (high === null) {
      delete result[key]
      continue
    }
    const low = result[key]
    result[key] = isPlainObject(low) && isPlainObject(high) ? mergeValues(low, high) : high
  }
  return result
}

/** Folds layers lowest first. */
export function layerValues (...layers: Values[]): Values {
  return layers.reduce<Values>((acc, layer) => mergeValues(acc, layer), {})
}

/**
 * JSON with object keys sorted at every depth, so equal values always give equal bytes
 * (the spec body and its ETag must be a pure function of the stored state).
 */
export function canonicalJson (value: unknown): string {
  return JSON.stringify(sortKeys(value))
}

function sortKeys (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === 'object') {
    const sorted: Values = {}
    for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Values)[key])
    return sorted
  }
  return value
}

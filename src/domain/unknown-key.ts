/**
 * Messages for a key a schema does not allow (`additionalProperties: false`): name the key, the
 * nearest allowed one when it looks like a typo, and the allowed keys, instead of the
 * validator's "schema is false" or "must NOT have additional properties".
 */

/**
 * Edit distance with adjacent transpositions (optimal string alignment): "acepts" is 1 from
 * "accepts", "pollIntreval" 1 from "pollInterval". Keys are short, so the table is tiny.
 */
export function editDistance (a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[] = new Array<number>(rows * cols).fill(0)
  for (let i = 0; i < rows; i++) d[i * cols] = i
  for (let j = 0; j < cols; j++) d[j] = j
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[(i - 2) * cols + j - 2]! + 1)
      d[i * cols + j] = best
    }
  }
  return d[rows * cols - 1]!
}

/**
 * The allowed key `key` was most likely meant to be, or null when none is close. Case is
 * ignored ("pollinterval"); a key is close when at most a third of it (and at least one
 * character, at most three) differs.
 */
export function nearestKey (key: string, allowed: readonly string[]): string | null {
  const lower = key.toLowerCase()
  let best: string | null = null
  let bestDistance = Infinity
  for (const candidate of allowed) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  if (best === null) return null
  const tolerance = Math.min(3, Math.max(1, Math.floor(best.length / 3)))
  return bestDistance <= tolerance ? best : null
}

/** `unknown key "acepts"; did you mean "accepts"? allowed: name, description, ...` */
export function describeUnknownKey (key: string, allowed: readonly string[], noun = 'key'): string {
  const nearest = nearestKey(key, allowed)
  const suggestion = nearest === null ? '' : `; did you mean "${nearest}"?`
  const list = allowed.length === 0 ? `no ${noun}s are allowed here` : `allowed: ${allowed.join(', ')}`
  return `unknown ${noun} ${JSON.stringify(key)}${suggestion}${nearest === null ? '; ' : ' '}${list}`
}

/** The keys named by a validator's instancePath, a JSON pointer (RFC 6901: "~1" is "/", "~0" is "~"). */
export function pointerSegments (pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

/**
 * The property names a JSON schema allows at `path` (keys from the root), following
 * `properties` and the members of `allOf`/`anyOf`; null when the schema there lists none.
 */
export function allowedKeysAt (schema: unknown, path: readonly string[]): string[] | null {
  let nodes: unknown[] = [schema]
  for (const key of path) {
    nodes = expand(nodes).flatMap((node) => {
      const child = (node as { properties?: Record<string, unknown> }).properties?.[key]
      return child === undefined || !Object.hasOwn((node as { properties: object }).properties, key) ? [] : [child]
    })
  }
  const names = new Set<string>()
  for (const node of expand(nodes)) {
    const properties = (node as { properties?: unknown }).properties
    if (properties !== null && typeof properties === 'object') for (const name of Object.keys(properties)) names.add(name)
  }
  return names.size === 0 ? null : [...names]
}

/** A schema and the members of its allOf/anyOf/oneOf (TypeBox's Intersect and Union), one level at a time. */
function expand (nodes: unknown[]): unknown[] {
  const out: unknown[] = []
  const pending = [...nodes]
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (node === null || typeof node !== 'object') continue
    out.push(node)
    for (const combinator of ['allOf', 'anyOf', 'oneOf'] as const) {
      const members = (node as Record<string, unknown>)[combinator]
      if (Array.isArray(members)) pending.push(...members)
    }
  }
  return out
}

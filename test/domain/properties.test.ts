/** Property-based tests (fast-check) of the values merge and of head selection. */
import t from 'tap'
import fc from 'fast-check'
import semver from 'semver'
import { isDeepStrictEqual } from 'node:util'
import { findForbiddenKey, ForbiddenKeyError, layerValues, mergeValues, type Values } from '../../src/domain/values.js'
import { selectChannelHead } from '../../src/domain/channel.js'

const key = fc.constantFrom('a', 'b', 'c', 'image', 'x', 'y', 'tag')
const scalar = fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.boolean())
const leaf = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }))

/** Values that may hold nulls anywhere (plain objects, as JSON and jsonb give them). */
const { values: withNulls } = fc.letrec<{ values: Values, value: unknown }>((tie) => ({
  values: fc.dictionary(key, tie('value'), { maxKeys: 4, noNullPrototype: true }),
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.constant(null), fc.array(scalar, { maxLength: 3 }), tie('values'))
}))

/**
 * Null-free layers of one shape: a key names a map in every layer or a leaf in every layer
 * (map keys a, b, c, image; leaf keys x, y, tag). Associativity can only hold for such layers:
 * a leaf in a middle layer wipes the map below it, which no composed layer can express
 * (see the shadowing test). Real layers (channel, release, user values) agree on shape.
 */
const mapKey = fc.constantFrom('a', 'b', 'c', 'image')
const leafKey = fc.constantFrom('x', 'y', 'tag')
const { values: nullFree } = fc.letrec<{ values: Values }>((tie) => ({
  values: fc.tuple(
    fc.dictionary(leafKey, leaf, { maxKeys: 3, noNullPrototype: true }),
    fc.oneof({ depthSize: 'small' }, fc.constant({}), fc.dictionary(mapKey, tie('values'), { maxKeys: 2, noNullPrototype: true }))
  ).map(([leaves, maps]) => ({ ...leaves, ...maps }) as Values)
}))

const forbidden = fc.constantFrom('__proto__', 'constructor', 'prototype')

/** A value with a forbidden key planted at a random depth, built the way JSON.parse would (own key). */
const poisoned = fc.tuple(nullFree, fc.array(key, { maxLength: 4 }), forbidden).map(([base, path, bad]) => {
  const root = structuredClone(base)
  let node: Values = root
  for (const k of path) {
    const next: Values = {}
    node[k] = next
    node = next
  }
  Object.defineProperty(node, bad, { value: { polluted: true }, enumerable: true, writable: true, configurable: true })
  return root
})

/** Every object in the tree still has Object.prototype as its prototype (none was swapped via __proto__). */
function prototypesIntact (value: unknown): boolean {
  if (Array.isArray(value)) return value.every(prototypesIntact)
  if (value === null || typeof value !== 'object') return true
  return Object.getPrototypeOf(value) === Object.prototype && Object.values(value).every(prototypesIntact)
}

function prototypesClean (): boolean {
  const probe = {} as Record<string, unknown>
  return probe.polluted === undefined && Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted') === false
}

t.test('merge is associative for null-free layers', async (t) => {
  fc.assert(fc.property(nullFree, nullFree, nullFree, (a, b, c) => {
    return isDeepStrictEqual(mergeValues(mergeValues(a, b), c), mergeValues(a, mergeValues(b, c)))
  }), { numRuns: 300 })
  t.pass('300 runs')
})

t.test('layerValues equals a left fold of mergeValues', async (t) => {
  fc.assert(fc.property(fc.array(withNulls, { maxLength: 4 }), (layers) => {
    const folded = layers.reduce<Values>((acc, l) => mergeValues(acc, l), {})
    return JSON.stringify(layerValues(...layers)) === JSON.stringify(folded)
  }), { numRuns: 200 })
  t.pass()
})

t.test('the empty map is an identity on both sides for null-free values', async (t) => {
  fc.assert(fc.property(nullFree, (a) => {
    return isDeepStrictEqual(mergeValues({}, a), a) && isDeepStrictEqual(mergeValues(a, {}), a)
  }), { numRuns: 200 })
  t.pass()
})

t.test('a null in the higher layer always deletes the key', async (t) => {
  fc.assert(fc.property(withNulls, key, (lower, k) => {
    const merged = mergeValues(lower, { [k]: null })
    return !Object.hasOwn(merged, k)
  }), { numRuns: 300 })
  t.pass()
})

t.test('a scalar in a middle layer shadows the map below it (why associativity needs one shape)', async (t) => {
  t.same(layerValues({ b: { a: 0 } }, { b: false }, { b: {} }), { b: {} })
  t.same(mergeValues({ b: { a: 0 } }, mergeValues({ b: false }, { b: {} })), { b: { a: 0 } })
})

t.test('merging never modifies its inputs', async (t) => {
  fc.assert(fc.property(withNulls, withNulls, (a, b) => {
    const before = JSON.stringify([a, b])
    mergeValues(a, b)
    return JSON.stringify([a, b]) === before
  }), { numRuns: 200 })
  t.pass()
})

t.test('a forbidden key at any depth is found, refused by the merge, and never pollutes a prototype', async (t) => {
  fc.assert(fc.property(poisoned, nullFree, fc.boolean(), (evil, other, evilOnTop) => {
    if (findForbiddenKey(evil) === null) return false
    try {
      const merged = evilOnTop ? mergeValues(other, evil) : mergeValues(evil, other)
      // The merge refuses every forbidden key it walks into; one it copies wholesale stays an own key.
      if (!prototypesIntact(merged)) return false
    } catch (error) {
      if (!(error instanceof ForbiddenKeyError)) throw error
    }
    return prototypesClean()
  }), { numRuns: 500 })
  t.ok(prototypesClean())
})

t.test('JSON text with forbidden keys never pollutes, whatever the merge order', async (t) => {
  fc.assert(fc.property(fc.array(key, { maxLength: 3 }), forbidden, nullFree, (path, bad, other) => {
    const json = path.reduceRight((inner, k) => `{"${k}":${inner}}`, `{"${bad}":{"polluted":true}}`)
    const evil = JSON.parse(json) as Values
    t.not(findForbiddenKey(evil), null)
    for (const [lo, hi] of [[evil, other], [other, evil], [evil, evil]] as Array<[Values, Values]>) {
      try {
        mergeValues(lo, hi)
      } catch (error) {
        if (!(error instanceof ForbiddenKeyError)) throw error
      }
    }
    return prototypesClean()
  }), { numRuns: 300 })
  t.ok(prototypesClean())
})

// ---------- head selection ----------

const version = fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.option(fc.constantFrom('alpha', 'beta.1', 'rc.1', 'rc.2'), { nil: undefined }))
  .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre === undefined ? '' : '-' + pre}`)

const operation = fc.record({ op: fc.constantFrom('promote' as const, 'withdraw' as const), version })

/** Replays operations the way the store does: promote activates (again), withdraw marks a member withdrawn. */
function replay (ops: Array<{ op: 'promote' | 'withdraw', version: string }>): Map<string, boolean> {
  const state = new Map<string, boolean>() // version -> withdrawn
  for (const { op, version } of ops) {
    if (op === 'promote') state.set(version, false)
    else if (state.has(version)) state.set(version, true)
  }
  return state
}

t.test('the head is the max non-withdrawn promoted version, whatever the order of operations', async (t) => {
  fc.assert(fc.property(fc.array(operation, { maxLength: 30 }), (ops) => {
    const state = replay(ops)
    const memberships = [...state].map(([v, withdrawn]) => ({ version: v, withdrawn }))
    const live = memberships.filter((m) => !m.withdrawn).map((m) => m.version)
    const expected = live.length === 0 ? null : semver.rsort([...live])[0]
    const head = selectChannelHead(memberships)
    if (head !== expected) return false
    // Independent of the order the store returns memberships in.
    return selectChannelHead([...memberships].reverse()) === head
  }), { numRuns: 500 })
  t.pass()
})

t.test('permuting the same set of operations per version never changes the head', async (t) => {
  fc.assert(fc.property(fc.uniqueArray(version, { minLength: 1, maxLength: 8 }), fc.func(fc.boolean()), fc.integer(), (versions, isWithdrawn, seed) => {
    const memberships = versions.map((v) => ({ version: v, withdrawn: isWithdrawn(v) }))
    const shuffled = [...memberships].sort((a, b) => ((a.version.length * 31 + seed) % 7) - ((b.version.length * 31 + seed) % 7))
    return selectChannelHead(memberships) === selectChannelHead(shuffled)
  }), { numRuns: 300 })
  t.pass()
})

t.test('the head is never a withdrawn version and is greater than or equal to every live one', async (t) => {
  fc.assert(fc.property(fc.array(fc.record({ version, withdrawn: fc.boolean() }), { maxLength: 15 }), (raw) => {
    // One membership per version, as the store keeps them.
    const memberships = [...new Map(raw.map((m) => [m.version, m])).values()]
    const head = selectChannelHead(memberships)
    const live = memberships.filter((m) => !m.withdrawn)
    if (head === null) return live.length === 0
    return live.some((m) => m.version === head) && live.every((m) => semver.gte(head, m.version))
  }), { numRuns: 500 })
  t.pass()
})

import t from 'tap'
import { canonicalJson, findForbiddenKey, ForbiddenKeyError, isPlainObject, layerValues, mergeValues, type Values } from '../../src/domain/values.js'

t.test('maps merge key by key, recursively', async (t) => {
  const lower = { image: { repository: 'acme/app', tag: '1.0.0' }, replicas: 1 }
  const higher = { image: { tag: '1.1.0' }, ingress: { enabled: true } }
  t.same(mergeValues(lower, higher), { image: { repository: 'acme/app', tag: '1.1.0' }, replicas: 1, ingress: { enabled: true } })
})

t.test('arrays from the higher layer replace, never concatenate', async (t) => {
  t.same(mergeValues({ hosts: ['a', 'b'], nested: { list: [1, 2, 3] } }, { hosts: ['c'], nested: { list: [] } }), { hosts: ['c'], nested: { list: [] } })
})

t.test('scalars replace maps and maps replace scalars', async (t) => {
  t.same(mergeValues({ a: { x: 1 }, b: 'text' }, { a: 'flat', b: { y: 2 } }), { a: 'flat', b: { y: 2 } })
})

t.test('a null in the higher layer removes the key, at any depth', async (t) => {
  const merged = mergeValues({ a: 1, nested: { keep: 1, drop: 2 } }, { a: null, nested: { drop: null } })
  t.same(merged, { nested: { keep: 1 } })
  t.notOk(Object.hasOwn(merged, 'a'))
  t.notOk(Object.hasOwn(merged.nested as object, 'drop'))
})

t.test('a null for a key absent below leaves it absent', async (t) => {
  t.same(mergeValues({ a: 1 }, { ghost: null }), { a: 1 })
})

t.test('a null in the lower layer is kept when the higher layer does not mention it', async (t) => {
  t.same(mergeValues({ a: null }, { b: 1 }), { a: null, b: 1 })
})

t.test('neither input is modified', async (t) => {
  const lower = { a: { b: 1 }, c: [1] }
  const higher = { a: { d: 2 }, c: null }
  const lowerCopy = structuredClone(lower)
  const higherCopy = structuredClone(higher)
  mergeValues(lower, higher)
  t.same(lower, lowerCopy)
  t.same(higher, higherCopy)
})

t.test('forbidden keys in a layer throw ForbiddenKeyError instead of merging', async (t) => {
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    const evil = JSON.parse(`{"${key}": {"polluted": true}}`) as Values
    t.throws(() => mergeValues({}, evil), ForbiddenKeyError, `higher ${key}`)
    t.throws(() => mergeValues(evil, {}), ForbiddenKeyError, `lower ${key}`)
    t.throws(() => mergeValues({ nested: {} }, { nested: evil }), ForbiddenKeyError, `nested ${key}`)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
})

t.test('layerValues folds layers lowest first', async (t) => {
  t.same(layerValues({ a: 1, b: 1 }, { b: 2, c: 2 }, { c: 3 }), { a: 1, b: 2, c: 3 })
  t.same(layerValues(), {})
})

t.test('findForbiddenKey reports the dotted path at any depth, including inside arrays', async (t) => {
  t.equal(findForbiddenKey({ a: 1 }), null)
  t.equal(findForbiddenKey(JSON.parse('{"__proto__": 1}')), '__proto__')
  t.equal(findForbiddenKey({ a: { b: [{ ok: 1 }, { constructor: 1 }] } }), 'a.b.1.constructor')
  t.equal(findForbiddenKey({ x: { prototype: {} } }), 'x.prototype')
  t.equal(findForbiddenKey([1, 'two', null]), null)
  t.equal(findForbiddenKey('__proto__'), null, 'a string value is not a key')
})

t.test('isPlainObject accepts object literals and null-prototype objects only', async (t) => {
  t.ok(isPlainObject({}))
  t.ok(isPlainObject(Object.create(null)))
  t.notOk(isPlainObject([]))
  t.notOk(isPlainObject(null))
  t.notOk(isPlainObject(new Date()))
  t.notOk(isPlainObject('x'))
})

t.test('canonicalJson sorts keys at every depth and keeps array order', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [3, 1], c: 2 } }), '{"a":{"c":2,"d":[3,1]},"b":1}')
  t.equal(canonicalJson({ b: 1, a: 2 }), canonicalJson({ a: 2, b: 1 }))
  t.equal(canonicalJson([{ z: 1, y: 2 }]), '[{"y":2,"z":1}]')
})

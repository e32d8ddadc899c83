import t from 'tap'
import { Type } from 'typebox'
import { allowedKeysAt, describeUnknownKey, editDistance, nearestKey } from '../../src/domain/unknown-key.js'
import { ChannelDetail, ReleaseInput } from '../../src/schemas.js'

t.test('editDistance counts insertions, deletions, substitutions and adjacent swaps as one each', async (t) => {
  t.equal(editDistance('accepts', 'accepts'), 0)
  t.equal(editDistance('acepts', 'accepts'), 1)
  t.equal(editDistance('accepst', 'accepts'), 1, 'a swap')
  t.equal(editDistance('acceptsx', 'accepts'), 1)
  t.equal(editDistance('kitten', 'sitting'), 3)
  t.equal(editDistance('', 'abc'), 3)
})

t.test('nearestKey suggests a close key, ignoring case, and nothing for a distant one', async (t) => {
  const allowed = ['name', 'description', 'values', 'accepts', 'pollInterval']
  t.equal(nearestKey('acepts', allowed), 'accepts')
  t.equal(nearestKey('poll_interval', allowed), 'pollInterval')
  t.equal(nearestKey('Values', allowed), 'values')
  t.equal(nearestKey('colour', allowed), null)
  t.equal(nearestKey('x', ['url']), null, 'one character is not "url"')
  t.equal(nearestKey('anything', []), null)
})

t.test('describeUnknownKey names the key, the guess and the allowed keys', async (t) => {
  t.equal(describeUnknownKey('chrat', ['version', 'chart']), 'unknown key "chrat"; did you mean "chart"? allowed: version, chart')
  t.equal(describeUnknownKey('zzz', ['version', 'chart']), 'unknown key "zzz"; allowed: version, chart')
  t.equal(describeUnknownKey('reasn', ['reason'], 'query parameter'), 'unknown query parameter "reasn"; did you mean "reason"? allowed: reason')
  t.equal(describeUnknownKey('a', [], 'query parameter'), 'unknown query parameter "a"; no query parameters are allowed here')
})

t.test('allowedKeysAt follows properties and intersections', async (t) => {
  t.same(allowedKeysAt(ReleaseInput, []), ['version', 'chart', 'values', 'notes', 'upgradeFrom'])
  t.same(allowedKeysAt(ReleaseInput, ['chart']), ['url', 'name', 'version', 'digest'])
  t.same(new Set(allowedKeysAt(ChannelDetail, [])), new Set(['name', 'description', 'values', 'accepts', 'pollInterval', 'head', 'updatedAt', 'managedBy', 'revision', 'releases', 'rollouts', 'freeze']))
  t.equal(allowedKeysAt(ReleaseInput, ['nope']), null)
  t.equal(allowedKeysAt(Type.Object({ toString: Type.String() }), ['constructor']), null, 'inherited names are not properties')
})

import t from 'tap'
import { checkStorableText, describeUnstorableText, findUnstorableText, unstorableCodeUnit } from '../../src/domain/storable-text.js'

t.test('ordinary text, paired surrogates (emoji) and non-string scalars are storable', async (t) => {
  t.equal(findUnstorableText({ a: 'plain', b: ['\uD83D\uDE80', 'tab\t', '\u0001', '\uFFFD'], c: { d: 1, e: true, f: null }, ['\uD83D\uDE00']: 'x' }), null)
  t.equal(findUnstorableText('text'), null)
  t.equal(findUnstorableText(42), null)
  t.equal(findUnstorableText(undefined), null)
})

t.test('U+0000 and unpaired surrogates are found by code unit', async (t) => {
  t.equal(unstorableCodeUnit('a\u0000b'), 0)
  t.equal(unstorableCodeUnit('a\uD800'), 0xD800, 'a high surrogate at the end')
  t.equal(unstorableCodeUnit('\uD800a'), 0xD800, 'a high surrogate followed by a non-surrogate')
  t.equal(unstorableCodeUnit('a\uDC00'), 0xDC00, 'a low surrogate without a high one')
  t.equal(unstorableCodeUnit('\uDE00\uD83D'), 0xDE00, 'a pair in the wrong order is two lone surrogates')
  t.equal(unstorableCodeUnit('\uD83D\uDE00'), null, 'a proper pair')
})

t.test('the path of a string value is returned, through objects and arrays', async (t) => {
  t.same(findUnstorableText('x\u0000'), { path: [], inKey: false, codeUnit: 0 })
  t.same(findUnstorableText({ values: { hosts: ['ok', 'b\uDC00'] } }), { path: ['values', 'hosts', '1'], inKey: false, codeUnit: 0xDC00 })
})

t.test('an offending key is reported with its path and inKey set', async (t) => {
  t.same(findUnstorableText({ values: { a: { 'k\u0000': 1 } } }), { path: ['values', 'a', 'k\u0000'], inKey: true, codeUnit: 0 })
})

t.test('the first offender in document order is the one reported', async (t) => {
  t.same(findUnstorableText({ a: ['\u0000', '\uD800'], b: '\u0000' })?.path, ['a', '0'])
  t.same(findUnstorableText({ a: { b: 'fine' }, c: '\u0000', d: '\u0000' })?.path, ['c'])
})

t.test('nesting far deeper than the call stack allows is walked without overflow', async (t) => {
  let deep: unknown = 'bottom\u0000'
  for (let i = 0; i < 200_000; i++) deep = [deep]
  const found = findUnstorableText(deep)
  t.equal(found?.path.length, 200_000)
  t.equal(found?.codeUnit, 0)
})

t.test('messages name the place and write the offending characters as escapes', async (t) => {
  t.equal(describeUnstorableText({ path: ['notes'], inKey: false, codeUnit: 0 }, 'body'), 'body.notes contains a NUL character (U+0000), which cannot be stored')
  t.equal(describeUnstorableText({ path: ['values', 'k\uD800'], inKey: true, codeUnit: 0xD800 }, 'body'), 'the key body.values.k\\uD800 contains an unpaired surrogate (U+D800), which cannot be stored')
  t.equal(describeUnstorableText({ path: ['description'], inKey: false, codeUnit: 0 }), 'description contains a NUL character (U+0000), which cannot be stored')
})

t.test('checkStorableText throws VALIDATION_FAILED naming the request part', async (t) => {
  t.doesNotThrow(() => checkStorableText({ body: { notes: 'ok' }, query: { reason: 'fine' } }))
  t.throws(() => checkStorableText({ body: { notes: 'ok' }, query: { reason: 'x\u0000' } }), { code: 'VALIDATION_FAILED', message: /^query\.reason contains a NUL character/ })
})

import t from 'tap'
import { countYamlTokens, describeYamlError, parseUntrustedYaml, YamlInputError, YamlLimitError } from '../../src/domain/yaml.js'

t.test('plain YAML maps, lists and scalars parse to JSON values', async (t) => {
  t.same(parseUntrustedYaml('a: 1\nb: [x, y]\nc:\n  d: true\n  e: null\n'), { a: 1, b: ['x', 'y'], c: { d: true, e: null } })
})

t.test('the core schema keeps YAML 1.1 oddities as strings', async (t) => {
  t.same(parseUntrustedYaml('country: no\nwhen: 2024-01-01\n'), { country: 'no', when: '2024-01-01' })
})

t.test('custom tags are refused with a YamlInputError', async (t) => {
  for (const doc of ['x: !!js/function "function () { return 1 }"\n', 'x: !!js/regexp /a/\n', 'x: !custom 1\n', 'x: !!binary aGk=\n', 'x: !!set {a, b}\n']) {
    t.throws(() => parseUntrustedYaml(doc), YamlInputError, doc)
  }
})

t.test('duplicate keys are refused at the line of the second key', async (t) => {
  const error = t.throws(() => parseUntrustedYaml('a: 1\nb: 1\na: 2\n')) as YamlInputError
  t.ok(error instanceof YamlInputError)
  t.equal(error.line, 3)
  t.equal(error.column, 1)
})

t.test('a syntax error reports line and column', async (t) => {
  const error = t.throws(() => parseUntrustedYaml('a: 1\nb: [unclosed\nc: 3\n')) as YamlInputError
  t.ok(error instanceof YamlInputError)
  t.type(error.line, 'number')
  t.match(describeYamlError(error), /^line \d+, column \d+: /)
})

t.test('a billion-laughs alias bomb fails fast instead of expanding', async (t) => {
  const bomb = [
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
    'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
    'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
    'h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]',
    'i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]'
  ].join('\n') + '\n'
  t.throws(() => parseUntrustedYaml(bomb), YamlInputError)
})

t.test('a few ordinary aliases are still allowed', async (t) => {
  t.same(parseUntrustedYaml('base: &b {x: 1}\nuse: *b\n'), { base: { x: 1 }, use: { x: 1 } })
})

t.test('a "__proto__" key becomes an own key and never reaches Object.prototype', async (t) => {
  const value = parseUntrustedYaml('__proto__:\n  polluted: true\n') as Record<string, unknown>
  t.ok(Object.hasOwn(value, '__proto__'))
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('non-string keys are refused', async (t) => {
  t.throws(() => parseUntrustedYaml('? [a, b]\n: 1\n'), YamlInputError)
})

t.test('describeYamlError without a position is the bare message', async (t) => {
  t.equal(describeYamlError(new YamlInputError('boom', null, null)), 'boom')
})

t.test('duplicate keys are found in nested and flow maps, at the second key', async (t) => {
  const nested = t.throws(() => parseUntrustedYaml('a:\n  b: 1\n  c: 2\n  b: 3\n')) as YamlInputError
  t.equal(nested.line, 4)
  t.equal(nested.column, 3)
  t.match(nested.message, /"b" is repeated/)
  const flow = t.throws(() => parseUntrustedYaml('list:\n  - {x: 1, y: 2, x: 3}\n')) as YamlInputError
  t.equal(flow.line, 2)
  t.ok(flow instanceof YamlInputError)
})

t.test('keys that are equal as strings are duplicates however they are quoted', async (t) => {
  t.throws(() => parseUntrustedYaml('1: a\n"1": b\n'), YamlInputError)
  t.throws(() => parseUntrustedYaml("k: a\n'k': b\n"), YamlInputError)
})

t.test('the same key in different maps is not a duplicate', async (t) => {
  t.same(parseUntrustedYaml('a: {x: 1}\nb: {x: 2}\nc: [{x: 3}, {x: 4}]\n'), { a: { x: 1 }, b: { x: 2 }, c: [{ x: 3 }, { x: 4 }] })
})

t.test('a map of 20,000 distinct keys parses, and one repeated at the end is found', async (t) => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}: ${i}`).join('\n')
  t.equal(Object.keys(parseUntrustedYaml(keys + '\n') as object).length, 20_000)
  const error = t.throws(() => parseUntrustedYaml(keys + '\nk0: again\n')) as YamlInputError
  t.equal(error.line, 20_001)
})

t.test('with limits, too many tokens, values or levels throw YamlLimitError naming the limit', async (t) => {
  const limits = { maxTokens: 100, maxNodes: 10, maxDepth: 3 }
  const cases: Array<[string, string]> = [
    ['#\n'.repeat(60), 'tokens'],
    ['[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n', 'nodes'],
    ['a: {b: {c: {d: 1}}}\n', 'depth']
  ]
  for (const [text, limit] of cases) {
    const error = t.throws(() => parseUntrustedYaml(text, limits)) as YamlLimitError
    t.ok(error instanceof YamlLimitError, limit)
    t.equal(error.limit, limit)
  }
  t.same(parseUntrustedYaml('a: {b: 1}\n', limits), { a: { b: 1 } }, 'within every limit')
  t.same(parseUntrustedYaml('#\n'.repeat(60) + 'a: 1\n'), { a: 1 }, 'no limits without the argument')
})

t.test('the token limit counts a token inside [ ] or { } two, as the parser spends about twice as long on it', async (t) => {
  // a: 1 -> document start, scalar marker, "a", ":", " ", scalar marker, "1", line break.
  t.equal(countYamlTokens('a: 1\n'), 8)
  // {a: 1} -> document start, then "{", marker, "a", ":", " ", marker, "1", "}" inside the braces, two each.
  t.equal(countYamlTokens('{a: 1}'), 17)
  t.equal(countYamlTokens('a: "[x] {y}"\n'), 7, 'brackets inside a quoted scalar are not flow indicators')
  t.equal(countYamlTokens('#\n'.repeat(1000), 10), 11, 'stops once past the limit')
  const limits = { maxTokens: 80, maxNodes: 1000, maxDepth: 10 }
  // 1 + 15 x 5 ("-", " ", marker, "0", line break) = 76 tokens; in flow style 1 + 2 x 46 + 1 = 94.
  const block = '- 0\n'.repeat(15)
  const flow = '[' + Array(15).fill('0').join(',') + ']\n'
  t.same(parseUntrustedYaml(block, limits), Array(15).fill(0), 'a block list of 15 items is within 80 tokens')
  const error = t.throws(() => parseUntrustedYaml(flow, limits)) as YamlLimitError
  t.equal(error.limit, 'tokens', 'the same list in flow style is not')
})

t.test('an alias counts as the values of its anchor', async (t) => {
  const limits = { maxTokens: 1000, maxNodes: 20, maxDepth: 10 }
  const anchor = 'base: &b [1, 2, 3, 4, 5, 6, 7, 8]\n'
  t.same(parseUntrustedYaml(anchor + 'copy: *b\n', limits), { base: [1, 2, 3, 4, 5, 6, 7, 8], copy: [1, 2, 3, 4, 5, 6, 7, 8] })
  t.throws(() => parseUntrustedYaml(anchor + 'copy: *b\nagain: *b\n', limits), YamlInputError)
})

import t from 'tap'
import { describeYamlError, parseUntrustedYaml, YamlInputError } from '../../src/domain/yaml.js'

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

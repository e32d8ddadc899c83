import t from 'tap'
import { ConfigError } from '../../src/agent/errors.js'
import { parseYamlData, parseYamlMapping } from '../../src/agent/yaml.js'

t.test('plain YAML and JSON parse to plain data', async (t) => {
  t.same(parseYamlMapping('a: 1\nb: [x, y]\nc: { d: null }\n', 'f'), { a: 1, b: ['x', 'y'], c: { d: null } })
  t.same(parseYamlMapping('{"a": {"b": true}}', 'f'), { a: { b: true } })
  t.same(parseYamlMapping('', 'f'), {}, 'an empty file is empty values')
  t.same(parseYamlMapping('base: &b { x: 1 }\ncopy: *b\n', 'f'), { base: { x: 1 }, copy: { x: 1 } }, 'a few aliases are fine')
})

t.test('forbidden keys are refused with their path', async (t) => {
  t.throws(() => parseYamlMapping('a:\n  __proto__: { x: 1 }\n', 'values.yaml'), { message: 'values.yaml: key "a.__proto__" is not allowed' })
  t.throws(() => parseYamlMapping('list:\n  - constructor: 1\n', 'v'), { message: /key "list\.0\.constructor"/ })
  t.throws(() => parseYamlMapping('prototype: 1\n', 'v'), { message: /key "prototype"/ })
})

t.test('unsafe or non-data YAML is refused', async (t) => {
  const laughs = ['a: &a [x, x, x, x, x, x, x, x, x]']
  for (let i = 1; i < 10; i++) laughs.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill('*' + String.fromCharCode(96 + i)).join(', ')}]`)
  const cases: Array<[string, RegExp]> = [
    [laughs.join('\n'), /alias|Excessive/i],
    ['a: !!js/function "function(){}"', /invalid YAML/],
    ['a: !custom x', /invalid YAML/],
    ['a: !!binary aGVsbG8=', /invalid YAML|not plain data/],
    ['a: !!timestamp 2001-12-14', /invalid YAML|not plain data/],
    ['a: 1\na: 2', /invalid YAML/],
    ['a: .inf', /not plain data/],
    ['- a\n- b', /expected a YAML mapping/],
    ['a: [1, 2', /invalid YAML/]
  ]
  for (const [text, message] of cases) {
    t.throws(() => parseYamlMapping(text, 'f'), message, text.slice(0, 40))
  }
  t.throws(() => parseYamlData('x: !!set { a, b }', 'f'), ConfigError)
})

t.test('YAML 1.1 merge keys are not expanded', async (t) => {
  t.same(parseYamlMapping('base: &b { x: 1 }\nchild:\n  <<: *b\n', 'f'), { base: { x: 1 }, child: { '<<': { x: 1 } } })
})

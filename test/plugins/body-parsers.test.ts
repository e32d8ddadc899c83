/** Request body parsing: bounded shape, finite numbers, YAML size and token limits, over the API. */
import t from 'tap'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem, auth } from '../helpers/problem.js'
import { parseJsonBody, parseYamlBody } from '../../src/plugins/body-parsers.js'
import { MAX_BODY_DEPTH, MAX_BODY_NODES, MAX_YAML_BODY_BYTES, MAX_YAML_BODY_TOKENS } from '../../src/domain/body-limits.js'
import { ChartcastError } from '../../src/errors.js'

const head = { version: '1.0.0', chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' } }
const yamlHead = 'version: 1.0.0\nchart:\n  url: https://charts.example.com/acme\n  name: acme-app\n  version: 0.1.0\n'

function codeOf (parse: () => unknown): string {
  try {
    parse()
    return 'parsed'
  } catch (error) {
    return error instanceof ChartcastError ? error.code : 'not catalogued'
  }
}

t.test('a JSON number beyond a double is refused naming its path', async (t) => {
  for (const [text, path] of [['{"values":{"replicas":1e309}}', 'values.replicas'], ['{"a":[1,2,-1e400]}', 'a.2'], ['1e999', '(root)']] as const) {
    const error = t.throws(() => parseJsonBody(text)) as ChartcastError
    t.equal(error.code, 'VALIDATION_FAILED')
    t.match(error.detail, `"${path}"`)
  }
  t.same(parseJsonBody('{"big":1.7976931348623157e308,"small":5e-324}'), { big: 1.7976931348623157e308, small: 5e-324 }, 'the largest and smallest doubles are fine')
})

t.test('JSON with more values than the limit is refused before parsing, whatever its shape', async (t) => {
  t.equal(codeOf(() => parseJsonBody('[' + '0,'.repeat(MAX_BODY_NODES) + '0]')), 'BODY_TOO_COMPLEX')
  t.equal(codeOf(() => parseJsonBody('{' + Array.from({ length: MAX_BODY_NODES }, (_, i) => `"k${i}":0`).join(',') + '}')), 'BODY_TOO_COMPLEX')
  t.equal(codeOf(() => parseJsonBody('[' + '{},'.repeat(MAX_BODY_NODES) + '{}]')), 'BODY_TOO_COMPLEX')
  // Exactly the limit: the root list plus MAX_BODY_NODES - 1 items.
  t.equal(codeOf(() => parseJsonBody('[' + '0,'.repeat(MAX_BODY_NODES - 2) + '0]')), 'parsed')
  t.equal(codeOf(() => parseJsonBody('[' + '[],'.repeat(MAX_BODY_NODES - 2) + '[]]')), 'parsed', 'empty lists count as one value each')
})

t.test('commas and brackets inside JSON strings are not counted as values', async (t) => {
  const text = JSON.stringify({ a: ',[{'.repeat(MAX_BODY_NODES), b: 'say \\"[,]\\"' })
  t.equal(codeOf(() => parseJsonBody(text)), 'parsed')
})

t.test('JSON nested deeper than the limit is refused before parsing', async (t) => {
  t.equal(codeOf(() => parseJsonBody('['.repeat(MAX_BODY_DEPTH + 1) + ']'.repeat(MAX_BODY_DEPTH + 1))), 'VALIDATION_FAILED')
  t.equal(codeOf(() => parseJsonBody('['.repeat(500_000) + ']'.repeat(500_000))), 'VALIDATION_FAILED')
  t.equal(codeOf(() => parseJsonBody('['.repeat(MAX_BODY_DEPTH) + ']'.repeat(MAX_BODY_DEPTH))), 'parsed')
})

t.test('YAML with more tokens than the limit is refused before the document is built', async (t) => {
  t.equal(codeOf(() => parseYamlBody('#\n'.repeat(MAX_YAML_BODY_TOKENS))), 'BODY_TOO_COMPLEX', 'comments count')
  t.equal(codeOf(() => parseYamlBody('[' + '0,'.repeat(MAX_YAML_BODY_TOKENS) + '0]')), 'BODY_TOO_COMPLEX')
  t.equal(codeOf(() => parseYamlBody(Array.from({ length: 2000 }, (_, i) => `k${i}: ${i}\n`).join(''))), 'parsed', '2,000 key: value lines are fine')
  // A flow list of n items is the document start plus 3n + 1 tokens inside the brackets, which
  // count two each: 6n + 3. The largest accepted is parsed in full.
  const items = Math.floor((MAX_YAML_BODY_TOKENS - 3) / 6)
  t.equal(codeOf(() => parseYamlBody('[' + '0,'.repeat(items - 1) + '0]')), 'parsed', 'a flow list at the limit is parsed')
  t.equal(codeOf(() => parseYamlBody('[' + '0,'.repeat(items) + '0]')), 'BODY_TOO_COMPLEX', 'one item more is refused')
})

t.test('YAML with more values than the limit is refused, aliases counting as what they copy', async (t) => {
  const anchor = 'base: &b [' + Array(999).fill('0').join(', ') + ']\n'
  const copies = Array.from({ length: Math.ceil(MAX_BODY_NODES / 1000) + 1 }, (_, i) => `c${i}: *b\n`).join('')
  t.equal(codeOf(() => parseYamlBody(anchor + copies)), 'MALFORMED_BODY', 'aliases of a large anchor are refused like an alias bomb')
  t.equal(codeOf(() => parseYamlBody(anchor + 'c0: *b\n')), 'parsed', 'one copy is fine')
})

t.test('YAML nested deeper than the limit is refused', async (t) => {
  t.equal(codeOf(() => parseYamlBody('a: ' + '['.repeat(MAX_BODY_DEPTH + 1) + ']'.repeat(MAX_BODY_DEPTH + 1))), 'VALIDATION_FAILED')
})

async function post (s: TestServer, body: string, type: string): Promise<Awaited<ReturnType<TestServer['app']['inject']>>> {
  return await s.app.inject({ method: 'POST', url: '/releases', headers: { ...auth(s.tokens.publisher), 'content-type': type }, payload: body })
}

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    t.test('1e309 in a JSON body is 400 naming the path, and nothing is stored', async (t) => {
      const s = await buildTestServer(t, { driver })
      const body = JSON.stringify({ ...head, values: { replicas: 3 } }).replace('"replicas":3', '"replicas":1e309')
      const problem = assertProblem(t, await post(s, body, 'application/json'), 400, 'VALIDATION_FAILED')
      t.match(problem.detail, '"values.replicas"')
      assertProblem(t, await s.app.inject({ url: '/releases/1.0.0', headers: auth(s.tokens.reader) }), 404, 'RELEASE_NOT_FOUND')
    })

    t.test('a JSON body with too many values is 413 BODY_TOO_COMPLEX', async (t) => {
      const s = await buildTestServer(t, { driver })
      const body = JSON.stringify({ ...head, values: { list: Array(MAX_BODY_NODES).fill(0) } })
      assertProblem(t, await post(s, body, 'application/json'), 413, 'BODY_TOO_COMPLEX')
    })

    t.test('a YAML body over 256 KiB is 413 PAYLOAD_TOO_LARGE, while JSON of that size is read', async (t) => {
      const s = await buildTestServer(t, { driver })
      const filler = 'x'.repeat(MAX_YAML_BODY_BYTES)
      assertProblem(t, await post(s, `${yamlHead}values:\n  note: "${filler}"\n`, 'application/yaml'), 413, 'PAYLOAD_TOO_LARGE')
      const res = await post(s, JSON.stringify({ ...head, values: { note: filler } }), 'application/json')
      t.equal(res.statusCode, 201, res.body)
    })

    t.test('a YAML body with too many tokens is 413 BODY_TOO_COMPLEX', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await post(s, yamlHead + 'values:\n' + '  # note\n'.repeat(MAX_YAML_BODY_TOKENS), 'application/yaml'), 413, 'BODY_TOO_COMPLEX')
    })

    t.test('a YAML body with one key repeated among 1,500 is 400 naming the key', async (t) => {
      const s = await buildTestServer(t, { driver })
      const body = yamlHead + 'values:\n' + Array.from({ length: 1500 }, (_, i) => `  k${i}: 0\n`).join('') + '  k7: 1\n'
      const problem = assertProblem(t, await post(s, body, 'application/yaml'), 400, 'MALFORMED_BODY')
      t.match(problem.detail, /"k7" is repeated/)
    })
  })
}

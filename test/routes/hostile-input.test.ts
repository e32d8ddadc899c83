/** Publisher input matrix: every hostile body is a 4xx problem, never a 5xx, and nothing is stored. */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestServer, testDrivers, type TestServer } from '../helpers/server.js'
import { assertProblem } from '../helpers/problem.js'

const chart = { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' }

async function post (s: TestServer, payload: string, contentType = 'application/json'): Promise<LightMyRequestResponse> {
  return await s.app.inject({ method: 'POST', url: '/releases', headers: { authorization: `Bearer ${s.tokens.publisher}`, 'content-type': contentType }, payload })
}

async function assertNothingStored (t: Test, s: TestServer): Promise<void> {
  const res = await s.app.inject({ url: '/releases', headers: { authorization: `Bearer ${s.tokens.reader}` } })
  t.same(res.json().releases, [], 'nothing stored')
  const audit = await s.app.inject({ url: '/audit', headers: { authorization: `Bearer ${s.tokens.admin}` } })
  t.same(audit.json().entries, [], 'nothing audited')
}

const json = (value: unknown): string => JSON.stringify(value)

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    for (const version of ['1.0', 'v1.0.0', '01.0.0', '1.0.0+build', '1.0.0.0', '', 'latest']) {
      t.test(`version ${JSON.stringify(version)} is 400 VALIDATION_FAILED`, async (t) => {
        const s = await buildTestServer(t, { driver })
        const problem = assertProblem(t, await post(s, json({ version, chart })), 400, 'VALIDATION_FAILED')
        if (version !== '') t.match(problem.detail, version)
        await assertNothingStored(t, s)
      })
    }

    t.test('a body over BODY_LIMIT is 413 PAYLOAD_TOO_LARGE', async (t) => {
      const s = await buildTestServer(t, { driver, env: { BODY_LIMIT: '2048' } })
      const big = json({ version: '1.0.0', chart, values: { blob: 'x'.repeat(4096) } })
      assertProblem(t, await post(s, big), 413, 'PAYLOAD_TOO_LARGE')
      assertProblem(t, await post(s, `version: 1.0.0\nnotes: ${'y'.repeat(4096)}\n`, 'application/yaml'), 413, 'PAYLOAD_TOO_LARGE')
      await assertNothingStored(t, s)
    })

    for (const key of ['__proto__', 'constructor', 'prototype']) {
      t.test(`a "${key}" key in JSON, top level or deep, is 400 FORBIDDEN_KEY`, async (t) => {
        const s = await buildTestServer(t, { driver })
        const bodies = [
          `{"version":"1.0.0","chart":${json(chart)},"values":{"${key}":{"polluted":true}}}`,
          `{"version":"1.0.0","chart":${json(chart)},"values":{"a":{"b":[{"c":{"${key}":{"polluted":true}}}]}}}`,
          `{"${key}":{"polluted":true},"version":"1.0.0","chart":${json(chart)}}`
        ]
        for (const body of bodies) t.match(assertProblem(t, await post(s, body), 400, 'FORBIDDEN_KEY').detail, key)
        t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
        await assertNothingStored(t, s)
      })

      t.test(`a "${key}" key in YAML, top level or deep, is 400 FORBIDDEN_KEY`, async (t) => {
        const s = await buildTestServer(t, { driver })
        const head = 'version: 1.0.0\nchart:\n  url: https://charts.example.com/acme\n  name: acme-app\n  version: 0.1.0\n'
        for (const body of [`${head}values:\n  ${key}:\n    polluted: true\n`, `${head}values:\n  a:\n    - b:\n        ${key}: 1\n`, `${key}: {}\n${head}`]) {
          assertProblem(t, await post(s, body, 'application/yaml'), 400, 'FORBIDDEN_KEY')
        }
        t.equal(({} as Record<string, unknown>).polluted, undefined)
        await assertNothingStored(t, s)
      })
    }

    t.test('a YAML alias bomb (billion laughs) is 400 MALFORMED_BODY', async (t) => {
      const s = await buildTestServer(t, { driver })
      const lines = ['version: 1.0.0', 'chart: {url: "https://c.example.com", name: c, version: "1"}', 'values:', '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
      let prev = 'a'
      for (const name of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) {
        lines.push(`  ${name}: &${name} [${Array(9).fill('*' + prev).join(',')}]`)
        prev = name
      }
      assertProblem(t, await post(s, lines.join('\n') + '\n', 'application/yaml'), 400, 'MALFORMED_BODY')
      await assertNothingStored(t, s)
    })

    for (const tagged of ['!!js/function "function () { return process.exit(1) }"', '!!js/undefined ""', '!!binary aGk=', '!!set {a, b}', '!custom x']) {
      t.test(`a YAML custom tag (${tagged.split(' ')[0]}) is 400 MALFORMED_BODY`, async (t) => {
        const s = await buildTestServer(t, { driver })
        const body = `version: 1.0.0\nchart:\n  url: https://charts.example.com/acme\n  name: acme-app\n  version: 0.1.0\nvalues:\n  x: ${tagged}\n`
        const problem = assertProblem(t, await post(s, body, 'application/yaml'), 400, 'MALFORMED_BODY')
        t.match(problem.detail, /line 7/)
        await assertNothingStored(t, s)
      })
    }

    t.test('malformed YAML is 400 MALFORMED_BODY naming the line', async (t) => {
      const s = await buildTestServer(t, { driver })
      const problem = assertProblem(t, await post(s, 'version: 1.0.0\nchart: {url: x\n  : :\n', 'application/yaml'), 400, 'MALFORMED_BODY')
      t.match(problem.detail, /line \d+/)
      await assertNothingStored(t, s)
    })

    for (const [name, values] of [['an array', [1, 2]], ['a string', 'replicas=3'], ['a number', 3], ['null', null]] as const) {
      t.test(`values as ${name} is 400`, async (t) => {
        const s = await buildTestServer(t, { driver })
        assertProblem(t, await post(s, json({ version: '1.0.0', chart, values })), 400, 'VALIDATION_FAILED')
        await assertNothingStored(t, s)
      })
    }

    for (const [name, body] of [['an array', '[1,2]'], ['a string', '"release"'], ['a number', '42'], ['null', 'null']] as const) {
      t.test(`a body that is ${name} is 400`, async (t) => {
        const s = await buildTestServer(t, { driver })
        const res = await post(s, body)
        t.equal(res.statusCode, 400, res.body)
        t.match(res.headers['content-type'], /^application\/problem\+json/)
        t.match(res.json().code, /^(VALIDATION_FAILED|MALFORMED_BODY)$/)
        await assertNothingStored(t, s)
      })
    }

    for (const url of ['file:///etc/passwd', 'javascript:alert(1)', 'ftp://charts.example.com/x', 'https://user:pw@charts.example.com/x', 'not a url']) {
      t.test(`chart url ${url} is 400 VALIDATION_FAILED`, async (t) => {
        const s = await buildTestServer(t, { driver })
        assertProblem(t, await post(s, json({ version: '1.0.0', chart: { ...chart, url } })), 400, 'VALIDATION_FAILED')
        await assertNothingStored(t, s)
      })
    }

    t.test('unknown fields, top level or in chart, are 400 VALIDATION_FAILED', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await post(s, json({ version: '1.0.0', chart, admin: true })), 400, 'VALIDATION_FAILED')
      assertProblem(t, await post(s, json({ version: '1.0.0', chart: { ...chart, digest: 'x' } })), 400, 'VALIDATION_FAILED')
      assertProblem(t, await post(s, 'version: 1.0.0\nchart: {url: "https://c.example.com", name: c, version: "1"}\nextra: 1\n', 'application/yaml'), 400, 'VALIDATION_FAILED')
      await assertNothingStored(t, s)
    })

    t.test('missing required fields and wrong types are 400 VALIDATION_FAILED', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const body of [{ chart }, { version: '1.0.0' }, { version: 1, chart }, { version: '1.0.0', chart: { ...chart, version: 1 } }, { version: '1.0.0', chart, notes: 5 }]) {
        assertProblem(t, await post(s, json(body)), 400, 'VALIDATION_FAILED')
      }
      await assertNothingStored(t, s)
    })

    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
      t.test(`content-type ${contentType} is 415 UNSUPPORTED_MEDIA_TYPE`, async (t) => {
        const s = await buildTestServer(t, { driver })
        assertProblem(t, await post(s, json({ version: '1.0.0', chart }), contentType), 415, 'UNSUPPORTED_MEDIA_TYPE')
        await assertNothingStored(t, s)
      })
    }

    t.test('malformed JSON is 400 MALFORMED_BODY', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const body of ['{"version": "1.0.0",', '{version: 1}', "{'a': 1}", '{"a":1}}']) {
        assertProblem(t, await post(s, body), 400, 'MALFORMED_BODY')
      }
      await assertNothingStored(t, s)
    })

    t.test('an empty JSON body is 400', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await post(s, '')
      t.equal(res.statusCode, 400, res.body)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      await assertNothingStored(t, s)
    })

    t.test('forbidden keys in channel values are refused too', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ method: 'PUT', url: '/channels/stable', headers: { authorization: `Bearer ${s.tokens.admin}`, 'content-type': 'application/json' }, payload: '{"values":{"a":{"__proto__":{"polluted":true}}}}' })
      assertProblem(t, res, 400, 'FORBIDDEN_KEY')
      t.same((await s.app.inject({ url: '/channels', headers: { authorization: `Bearer ${s.tokens.reader}` } })).json().channels, [])
    })

    t.test('a deeply nested JSON body is 400 VALIDATION_FAILED, not a stack overflow', async (t) => {
      const s = await buildTestServer(t, { driver })
      for (const depth of [65, 5000, 100_000]) {
        const arrays = `{"version":"1.0.0","chart":${json(chart)},"values":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`
        t.match(assertProblem(t, await post(s, arrays), 400, 'VALIDATION_FAILED').detail, /nested deeper than 64/)
        const maps = `{"version":"1.0.0","chart":${json(chart)},"values":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`
        assertProblem(t, await post(s, maps), 400, 'VALIDATION_FAILED')
      }
      await assertNothingStored(t, s)
    })

    t.test('a deeply nested YAML body is a 400, not a stack overflow', async (t) => {
      const s = await buildTestServer(t, { driver })
      // 3,900 levels is about the deepest a YAML body can be within the token limit (each bracket counts two).
      for (const depth of [65, 3900]) {
        const res = await post(s, `version: 1.0.0\nchart: ${json(chart)}\nvalues: {a: ${'['.repeat(depth)}${']'.repeat(depth)}}\n`, 'application/yaml')
        t.equal(res.statusCode, 400, res.body)
        t.match(res.json().code, /^(VALIDATION_FAILED|MALFORMED_BODY)$/)
      }
      await assertNothingStored(t, s)
    })

    t.test('values nested 60 levels deep are still accepted', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await post(s, `{"version":"1.0.0","chart":${json(chart)},"values":${'{"a":'.repeat(60)}1${'}'.repeat(60)}}`)
      t.equal(res.statusCode, 201, res.body)
    })

    t.test('an over-long path parameter is a 400 VALIDATION_FAILED problem', async (t) => {
      const s = await buildTestServer(t, { driver })
      const res = await s.app.inject({ url: `/releases/${'1'.repeat(300)}.0.0`, headers: { authorization: `Bearer ${s.tokens.reader}` } })
      t.match(assertProblem(t, res, 400, 'VALIDATION_FAILED').detail, /longer than 256/)
    })

    t.test('a badly percent-encoded URL is a 400 VALIDATION_FAILED problem', async (t) => {
      const s = await buildTestServer(t, { driver })
      assertProblem(t, await s.app.inject({ url: '/releases/%E0%A4%A', headers: { authorization: `Bearer ${s.tokens.reader}` } }), 400, 'VALIDATION_FAILED')
    })
  })
}

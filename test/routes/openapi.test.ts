/**
 * The OpenAPI document (/docs/json) against the app itself: every route is in it, and what it
 * says about each route (security, request body types, responses) is what the route does.
 */
import t, { type Test } from 'tap'
import type { RouteOptions } from 'fastify'
import { parse as parseYaml } from 'yaml'
import { ERROR_CATALOGUE, type ErrorCode } from '../../src/errors.js'
import { openEventStream } from '../helpers/event-stream.js'
import { buildTestServer, testDrivers, type Driver, type TestServer } from '../helpers/server.js'

interface Operation {
  summary?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  requestBody?: { content: Record<string, unknown> }
  parameters?: Array<{ in: string, name: string, required?: boolean }>
  responses: Record<string, { description?: string, content?: Record<string, { schema?: { properties?: { code?: { enum?: string[] } } } }> }>
}
interface OpenApiDocument {
  openapi: string
  info: { title: string }
  paths: Record<string, Record<string, Operation>>
  components: { securitySchemes: Record<string, unknown>, schemas?: Record<string, unknown> }
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options']
const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml']
const PROBLEM_TYPE = 'application/problem+json'

/**
 * Signing in and out: the credential comes in the body (or from the identity provider), so
 * these refuse with 401/403 without declaring a security scheme, and signing out without a
 * session is not refused at all (it clears the cookie).
 */
const SIGN_IN_ROUTES = new Set(['POST /auth/session', 'DELETE /auth/session', 'GET /auth/oidc/callback'])

/** The reference page and its assets are the documentation, not part of it. */
const isDocsRoute = (url: string): boolean => url === '/docs' || url.startsWith('/docs/') || isDashboardRoute(url)
/** The dashboard's page and assets (src/plugins/dashboard.ts) are a client of the API, not part of it. */
const isDashboardRoute = (url: string): boolean => url === '/' || url === '/ui' || url.startsWith('/ui/')

function operations (doc: OpenApiDocument): Array<{ method: string, path: string, operation: Operation }> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).filter(([method]) => HTTP_METHODS.includes(method)).map(([method, operation]) => ({ method, path, operation })))
}

/** fastify's `/channels/:name` is OpenAPI's `/channels/{name}`. */
const openApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')

async function documentOf (s: TestServer): Promise<OpenApiDocument> {
  const res = await s.app.inject({ url: '/docs/json' })
  if (res.statusCode !== 200) throw new Error(`/docs/json answered ${res.statusCode}`)
  return res.json()
}

/** A server with every route it registered, and a channel "stable" holding release 1.0.0. */
async function documentedServer (t: Test, driver: Driver): Promise<{ s: TestServer, doc: OpenApiDocument, routes: Array<{ method: string, url: string }> }> {
  const routes: Array<{ method: string, url: string }> = []
  const onRoute = (route: RouteOptions): void => {
    for (const method of [route.method].flat()) routes.push({ method: method.toLowerCase(), url: route.url })
  }
  const s = await buildTestServer(t, { driver, onRoute })
  await s.putChannel('stable')
  await s.publish('1.0.0')
  await s.promote('stable', '1.0.0')
  return { s, doc: await documentOf(s), routes }
}
/** GET /events: documented as text/event-stream. */
const isEventStream = (operation: Operation): boolean => Object.keys(operation.responses['200']?.content ?? {}).includes('text/event-stream')
const fillPath = (path: string): string => path.replace('{name}', 'stable').replace('{version}', '1.0.0')

for (const driver of testDrivers()) {
  t.test(driver, async (t) => {
    const { s, doc, routes } = await documentedServer(t, driver)
    const ops = operations(doc)

    t.test('/docs/json is an OpenAPI 3 document for chartcast with its four security schemes', async (t) => {
      t.match(doc.openapi, /^3\./)
      t.equal(doc.info.title, 'chartcast')
      t.same(Object.keys(doc.components.securitySchemes).sort(), ['license', 'operatorBasic', 'publisherToken', 'session'])
    })

    t.test('every route the app registers is in the document, and the document lists no other', async (t) => {
      const registered = routes.filter((r) => r.method !== 'head' && !isDocsRoute(r.url)).map((r) => `${r.method.toUpperCase()} ${openApiPath(r.url)}`)
      const documented = ops.map((o) => `${o.method.toUpperCase()} ${o.path}`)
      t.ok(registered.includes('POST /releases'), 'the app\'s routes were seen')
      t.same([...new Set(registered)].sort(), documented.sort())
      // A route registered without a schema still shows up, but with fastify-swagger's placeholders.
      for (const { method, path, operation } of ops) {
        const name = `${method.toUpperCase()} ${path}`
        t.ok(operation.summary !== undefined && operation.summary !== '', `${name}: has a summary`)
        t.ok((operation.tags ?? []).length > 0, `${name}: has a tag`)
        t.notOk(Object.values(operation.responses).some((r) => r.description === 'Default Response'), `${name}: declares its responses`)
      }
    })

    t.test('no GET route declares a request body, 413 or 415', async (t) => {
      const gets = ops.filter((o) => o.method === 'get')
      t.ok(gets.length > 0)
      for (const { path, operation } of gets) {
        t.equal(operation.requestBody, undefined, `GET ${path}: no request body`)
        t.notOk('413' in operation.responses || '415' in operation.responses, `GET ${path}: no 413/415`)
      }
    })

    t.test('every route with a body accepts JSON and YAML and declares 400, 413 and 415; no other route declares 413 or 415', async (t) => {
      for (const { method, path, operation } of ops) {
        const name = `${method.toUpperCase()} ${path}`
        if (operation.requestBody === undefined) {
          t.notOk('413' in operation.responses || '415' in operation.responses, `${name}: no body, no 413/415`)
          continue
        }
        t.same(Object.keys(operation.requestBody.content).sort(), ['application/json', ...YAML_TYPES].sort(), `${name}: JSON and YAML`)
        for (const status of ['400', '413', '415']) t.ok(status in operation.responses, `${name}: ${status}`)
      }
      t.ok(doc.paths['/releases']?.post?.requestBody?.content['application/yaml'], 'POST /releases lists application/yaml')
    })

    t.test('POST /releases accepts each body media type the document lists, and refuses text/plain with 415', async (t) => {
      const types = Object.keys(doc.paths['/releases']!.post!.requestBody!.content)
      for (const [index, type] of types.entries()) {
        const version = `3.0.${index}`
        const payload = type === 'application/json'
          ? JSON.stringify({ version, chart: { url: 'https://charts.example.com/acme', name: 'acme-app', version: '0.1.0' } })
          : `version: ${version}\nchart:\n  url: https://charts.example.com/acme\n  name: acme-app\n  version: 0.1.0\n`
        const res = await s.app.inject({ method: 'POST', url: '/releases', headers: { authorization: `Bearer ${s.tokens.publisher}`, 'content-type': type }, payload })
        t.equal(res.statusCode, 201, `${type}: ${res.body}`)
      }
      const refused = await s.app.inject({ method: 'POST', url: '/releases', headers: { authorization: `Bearer ${s.tokens.publisher}`, 'content-type': 'text/plain' }, payload: 'version: 3.1.0' })
      t.equal(refused.statusCode, 415)
      t.equal(refused.json().code, 'UNSUPPORTED_MEDIA_TYPE')
    })

    t.test('every error response is a problem document whose codes have that status in the catalogue', async (t) => {
      for (const { method, path, operation } of ops) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue
          const name = `${method.toUpperCase()} ${path} ${status}`
          t.same(Object.keys(response.content ?? {}), [PROBLEM_TYPE], `${name}: ${PROBLEM_TYPE} only`)
          const codes = response.content?.[PROBLEM_TYPE]?.schema?.properties?.code?.enum ?? []
          t.ok(codes.length > 0, `${name}: names its codes`)
          for (const code of codes) t.equal(ERROR_CATALOGUE[code as ErrorCode]?.status, Number(status), `${name}: ${code}`)
        }
      }
    })

    t.test('security names declared schemes; 401 and 403 are declared exactly where security is', async (t) => {
      for (const { method, path, operation } of ops) {
        const name = `${method.toUpperCase()} ${path}`
        const schemes = (operation.security ?? []).flatMap((requirement) => Object.keys(requirement))
        for (const scheme of schemes) t.ok(scheme in doc.components.securitySchemes, `${name}: ${scheme} is declared`)
        const secured = schemes.length > 0
        if (SIGN_IN_ROUTES.has(name)) continue
        t.equal('401' in operation.responses, secured, `${name}: 401 iff secured`)
        t.equal('403' in operation.responses, secured, `${name}: 403 iff secured`)
      }
      t.ok('401' in (doc.paths['/auth/session']?.post?.responses ?? {}), 'signing in with a bad token is documented as 401')
      t.same(doc.paths['/channels/{name}/spec']?.get?.security, [{ license: [] }])
      t.same(doc.paths['/api/v1/operator/channel']?.get?.security, [{ operatorBasic: [] }])
      t.same(doc.paths['/releases']?.post?.security, [{ publisherToken: [] }, { session: [] }])
      t.equal(doc.paths['/livez']?.get?.security, undefined)
    })

    t.test('with ANONYMOUS_CHANNEL set, the operator routes document that no credentials are an option too', async (t) => {
      const anonymous = await buildTestServer(t, { driver, env: { ANONYMOUS_CHANNEL: 'stable' } })
      const anonymousDoc = await documentOf(anonymous)
      for (const path of ['/api/v1/operator/channel', '/api/v1/operator/channel/release/{version}']) {
        t.same(anonymousDoc.paths[path]?.get?.security, [{ operatorBasic: [] }, {}], path)
        t.same(doc.paths[path]?.get?.security, [{ operatorBasic: [] }], `${path} without ANONYMOUS_CHANNEL`)
      }
    })

    t.test('without credentials a route answers 401 exactly when it declares security, with a documented status', async (t) => {
      for (const { method, path, operation } of ops) {
        const name = `${method.toUpperCase()} ${path}`
        const hasBody = operation.requestBody !== undefined
        const res = await s.app.inject({ method: method.toUpperCase() as 'GET', url: fillPath(path), ...(hasBody && { payload: {} }) })
        t.ok(String(res.statusCode) in operation.responses, `${name}: ${res.statusCode} is documented`)
        // A body is validated before the token is checked, so `{}` is refused first (400).
        if (!hasBody && !SIGN_IN_ROUTES.has(name)) t.equal(res.statusCode === 401, operation.security !== undefined, `${name}: ${res.statusCode}`)
      }
    })

    t.test('with credentials every answer has a documented status and media type', async (t) => {
      let base: string | null = null
      const listening = async (): Promise<string> => (base ??= await s.listen())
      const license = await s.license()
      const signIn = await s.app.inject({ method: 'POST', url: '/auth/session', payload: { token: s.tokens.admin } })
      const sessionCookie = String([signIn.headers['set-cookie']].flat()[0]).split(';')[0]!
      const credentials: Record<string, Record<string, string>> = {
        publisherToken: { authorization: `Bearer ${s.tokens.admin}` },
        license: { authorization: `Bearer ${license}` },
        operatorBasic: { authorization: `Basic ${Buffer.from(`license:${license}`).toString('base64')}` },
        session: { cookie: sessionCookie, origin: 'http://localhost' }
      }
      for (const { method, path, operation } of ops) {
        const name = `${method.toUpperCase()} ${path}`
        const scheme = Object.keys(operation.security?.[0] ?? {})[0]
        if (isEventStream(operation)) {
          // A stream never ends, so inject() would wait for ever: read its head over a real connection.
          const stream = await openEventStream(await listening(), s.tokens.admin, fillPath(path))
          stream.close()
          t.ok(operation.responses[String(stream.status)], `${name}: ${stream.status} is documented`)
          t.match(String(stream.headers['content-type']), /^text\/event-stream/, `${name}: answers text/event-stream`)
          continue
        }
        const res = await s.app.inject({
          method: method.toUpperCase() as 'GET',
          url: fillPath(path),
          headers: scheme === undefined ? {} : credentials[scheme]!,
          ...(operation.requestBody !== undefined && { payload: {} })
        })
        const response = operation.responses[String(res.statusCode)]
        t.ok(response, `${name}: ${res.statusCode} is documented (${res.body.slice(0, 120)})`)
        const mediaTypes = Object.keys(response?.content ?? {})
        if (mediaTypes.length === 0) t.equal(res.body, '', `${name}: ${res.statusCode} has no content`)
        else t.ok(mediaTypes.some((type) => String(res.headers['content-type']).startsWith(type)), `${name}: ${res.headers['content-type']} is one of ${mediaTypes.join(', ')}`)
      }
    })

    t.test('/metrics is documented as Prometheus text, as served', async (t) => {
      const content = doc.paths['/metrics']?.get?.responses['200']?.content ?? {}
      t.same(Object.keys(content), ['text/plain; version=0.0.4'])
      const res = await s.app.inject({ url: '/metrics' })
      t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
    })

    t.test('the document is structurally valid OpenAPI 3.0: refs resolve, path parameters declared, responses described', async (t) => {
      const refs = JSON.stringify(doc).match(/"\$ref":"[^"]*"/g) ?? []
      for (const ref of refs) {
        const pointer = ref.slice(9, -1)
        t.match(pointer, /^#\//, `${pointer} is local`)
        const target = pointer.slice(2).split('/').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc)
        t.ok(target, `${pointer} resolves`)
      }
      for (const { method, path, operation } of ops) {
        const name = `${method.toUpperCase()} ${path}`
        const declared = (operation.parameters ?? []).filter((p) => p.in === 'path')
        const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
        t.same(declared.map((p) => p.name).sort(), templated.sort(), `${name}: path parameters`)
        t.ok(declared.every((p) => p.required === true), `${name}: path parameters are required`)
        t.ok(Object.keys(operation.responses).length > 0, `${name}: has responses`)
        for (const [status, response] of Object.entries(operation.responses)) {
          t.match(status, /^[1-5][0-9][0-9]$/, `${name}: ${status} is a status code`)
          t.ok(typeof response.description === 'string' && response.description !== '', `${name} ${status}: described`)
        }
      }
    })

    t.test('/docs/yaml is the same document as /docs/json', async (t) => {
      const res = await s.app.inject({ url: '/docs/yaml' })
      t.equal(res.statusCode, 200)
      t.same(parseYaml(res.body), doc)
    })

    t.test('/docs answers the interactive reference, loading only local assets the server itself serves', async (t) => {
      for (const page of ['/docs', '/docs/']) {
        const res = await s.app.inject({ url: page })
        t.equal(res.statusCode, 200, page)
        t.match(res.headers['content-type'], /^text\/html/)
        const urls = [...res.body.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!)
        t.ok(urls.some((url) => url.endsWith('swagger-ui-bundle.js')), `${page}: loads the Swagger UI bundle`)
        for (const url of urls) {
          t.notMatch(url, /^([a-z][a-z0-9+.-]*:|\/\/)/i, `${page}: ${url} names no scheme or host`)
          const asset = await s.app.inject({ url: new URL(url, `http://chartcast.invalid${page}`).pathname })
          t.equal(asset.statusCode, 200, `${page}: ${url} is served by the app`)
        }
        // The browser is told to load and connect to nothing but this server.
        const csp = String(res.headers['content-security-policy'])
        t.match(csp, /default-src 'self'/)
        t.match(csp, /connect-src 'self'/)
        t.notMatch(csp, /https?:|\*/, 'no other origin allowed')
      }
      const initializer = await s.app.inject({ url: '/docs/static/swagger-initializer.js' })
      t.match(initializer.body, /validatorUrl": ?null|"validatorUrl":null/, 'no online validator')
      t.match(initializer.body, /resolveUrl\('\.\/json'\)/, 'the page reads the document from this server')
    })
  })
}

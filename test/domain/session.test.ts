import t from 'tap'
import { claimAt, cookieValue, isSafeMethod, mapRole, originAllowed, parseRoleMapping, safeReturnTo, sessionExpiry } from '../../src/domain/session.js'

t.test('sessionExpiry: the earlier of SESSION_MAX_AGE and the credential\'s own exp', async (t) => {
  t.equal(sessionExpiry(1000, 3600, 1120), 1120, 'a token ending in 2 minutes bounds the session')
  t.equal(sessionExpiry(1000, 600, 999_999), 1600, 'a long-lived token is capped by the maximum age')
  t.equal(sessionExpiry(1000, 600, 1200.9), 1200, 'a fractional exp is not rounded up past the credential')
})

t.test('safeReturnTo keeps paths on this server and turns everything else into the fallback', async (t) => {
  for (const ok of ['/ui/', '/ui/channels/stable?tab=history#top', '/']) t.equal(safeReturnTo(ok), ok, ok)
  t.equal(safeReturnTo('/ui/../docs'), '/docs', 'dot segments resolve, still on this server')
  for (const bad of ['https://evil.example/', '//evil.example', '/\\evil.example', '\\\\evil.example', 'javascript:alert(1)', 'ui/relative', '', '/ui/\nSet-Cookie: x', '/\tevil', undefined, 42, ['/ui/'], '/' + 'a'.repeat(3000)]) {
    t.equal(safeReturnTo(bad), '/ui/', JSON.stringify(bad))
  }
  t.equal(safeReturnTo('https://evil.example', '/home'), '/home')
})

t.test('parseRoleMapping reads claim-value=role entries and says what is wrong otherwise', async (t) => {
  t.same(parseRoleMapping('chartcast-admins=admin, chartcast-release = publisher,*=reader'), {
    ok: true,
    rules: [{ value: 'chartcast-admins', role: 'admin' }, { value: 'chartcast-release', role: 'publisher' }, { value: '*', role: 'reader' }]
  })
  for (const [text, message] of [
    ['admins=root', /role must be one of reader, publisher, admin/],
    ['admins', /must be claim-value=role/],
    ['a=b=admin', /must be claim-value=role/],
    ['=admin', /no claim value/],
    ['admins=admin,,x=reader', /entry 2 is empty/],
    ['admins=admin,admins=reader', /mapped twice/]
  ] as const) {
    const result = parseRoleMapping(text)
    t.equal(result.ok, false, text)
    if (!result.ok) t.match(result.message, message, text)
  }
})

t.test('mapRole: the highest role among matching entries, * matches anyone, no match is null', async (t) => {
  const rules = [{ value: 'admins', role: 'admin' as const }, { value: 'release', role: 'publisher' as const }, { value: 'viewers', role: 'reader' as const }]
  t.equal(mapRole(['viewers', 'release'], rules), 'publisher')
  t.equal(mapRole(['staff', 'admins'], rules), 'admin')
  t.equal(mapRole('viewers', rules), 'reader', 'a single string claim')
  t.equal(mapRole(['marketing'], rules), null)
  t.equal(mapRole(undefined, rules), null)
  t.equal(mapRole([1, { admins: true }], rules), null, 'non-strings never match')
  t.equal(mapRole(undefined, [...rules, { value: '*', role: 'reader' }]), 'reader')
  t.equal(mapRole(['admins'], [{ value: '*', role: 'reader' }, ...rules]), 'admin', 'order does not matter')
})

t.test('claimAt reads a top-level claim, else a dotted path', async (t) => {
  const claims = { groups: ['a'], 'odd.name': 'x', realm_access: { roles: ['r'] } }
  t.same(claimAt(claims, 'groups'), ['a'])
  t.equal(claimAt(claims, 'odd.name'), 'x')
  t.same(claimAt(claims, 'realm_access.roles'), ['r'])
  t.equal(claimAt(claims, 'realm_access.missing'), undefined)
  t.equal(claimAt(claims, 'groups.length'), undefined, 'no walking into arrays')
  t.equal(claimAt(claims, 'realm_access.constructor'), undefined, 'only own properties')
})

t.test('originAllowed: exactly the expected origin, and never a missing one', async (t) => {
  t.ok(originAllowed('https://chartcast.example.com', 'https://chartcast.example.com'))
  t.notOk(originAllowed(undefined, 'https://chartcast.example.com'))
  t.notOk(originAllowed('null', 'https://chartcast.example.com'))
  t.notOk(originAllowed('https://chartcast.example.com.evil.example', 'https://chartcast.example.com'))
  t.notOk(originAllowed('http://chartcast.example.com', 'https://chartcast.example.com'))
})

t.test('isSafeMethod: only GET, HEAD and OPTIONS skip the Origin check', async (t) => {
  for (const method of ['GET', 'HEAD', 'OPTIONS']) t.ok(isSafeMethod(method), method)
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) t.notOk(isSafeMethod(method), method)
})

t.test('cookieValue finds one cookie by exact name', async (t) => {
  t.equal(cookieValue('a=1; chartcast_session=abc.def; b=2', 'chartcast_session'), 'abc.def')
  t.equal(cookieValue('xchartcast_session=no', 'chartcast_session'), null)
  t.equal(cookieValue('chartcast_session=', 'chartcast_session'), null)
  t.equal(cookieValue(undefined, 'chartcast_session'), null)
})

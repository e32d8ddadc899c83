import t from 'tap'
import { checkPublisherToken, CLOCK_SKEW_SECONDS, isRole } from '../../src/domain/publisher-token.js'

const NOW = 1_800_000_000
const DAY = 86400
const policy = { maxLifetimeSeconds: 90 * DAY }
const none = new Set<string>()
const good = { sub: 'rita', role: 'publisher', jti: 'tok-1', iat: NOW, exp: NOW + 30 * DAY }

function refusal (payload: unknown, revoked: ReadonlySet<string> = none): { code: string, detail: string } | null {
  const check = checkPublisherToken(payload, NOW, policy, revoked)
  return check.ok ? null : { code: check.code, detail: check.detail }
}

t.test('a token with sub, role, jti and exp within the maximum passes, with its claims', async (t) => {
  t.same(checkPublisherToken(good, NOW, policy, none), { ok: true, claims: good })
  const { iat: _iat, ...withoutIat } = good
  t.same(checkPublisherToken(withoutIat, NOW, policy, none), { ok: true, claims: withoutIat })
})

t.test('a token without exp is refused: it would never end', async (t) => {
  const { exp: _exp, ...payload } = good
  t.match(refusal(payload), { code: 'UNAUTHORIZED', detail: /no "exp"/ })
  t.match(refusal({ ...good, exp: '2030-01-01' }), { code: 'UNAUTHORIZED', detail: /no "exp"/ })
})

t.test('a token without jti is refused: it could not be revoked', async (t) => {
  const { jti: _jti, ...payload } = good
  t.match(refusal(payload), { code: 'UNAUTHORIZED', detail: /no "jti".*could not be revoked/ })
  t.match(refusal({ ...good, jti: '' }), { code: 'UNAUTHORIZED', detail: /no "jti"/ })
  t.match(refusal({ ...good, jti: 7 }), { code: 'UNAUTHORIZED', detail: /no "jti"/ })
})

t.test('a token whose exp - iat exceeds the maximum is refused, the maximum itself passes', async (t) => {
  t.match(refusal({ ...good, exp: NOW + 90 * DAY + 1 }), { code: 'UNAUTHORIZED', detail: /exp - iat.*90d.*PUBLISHER_TOKEN_MAX_LIFETIME/ })
  t.equal(refusal({ ...good, exp: NOW + 90 * DAY }), null)
  // Issued a year ago for a year: only days left, but it was minted beyond the maximum.
  t.match(refusal({ ...good, iat: NOW - 365 * DAY, exp: NOW + 5 * DAY }), { code: 'UNAUTHORIZED', detail: /exp - iat/ })
})

t.test('a token without iat whose exp lies beyond now + maximum is refused', async (t) => {
  const { iat: _iat, ...payload } = good
  t.match(refusal({ ...payload, exp: NOW + 91 * DAY }), { code: 'UNAUTHORIZED', detail: /from now/ })
  t.equal(refusal({ ...payload, exp: NOW + 90 * DAY }), null)
})

t.test('an iat in the future does not stretch the maximum', async (t) => {
  t.match(refusal({ ...good, iat: NOW + 365 * DAY, exp: NOW + 365 * DAY + 30 * DAY }), { code: 'UNAUTHORIZED', detail: /from now/ })
})

t.test('a minting clock slightly ahead of ours is tolerated', async (t) => {
  const ahead = NOW + CLOCK_SKEW_SECONDS
  t.equal(refusal({ ...good, iat: ahead, exp: ahead + 90 * DAY }), null)
  t.not(refusal({ ...good, iat: ahead + 1, exp: ahead + 1 + 90 * DAY }), null)
})

t.test('a revoked jti is refused with TOKEN_REVOKED; others pass', async (t) => {
  const revoked = new Set(['tok-1'])
  t.match(refusal(good, revoked), { code: 'TOKEN_REVOKED', detail: /revoked/ })
  t.equal(refusal({ ...good, jti: 'tok-2' }, revoked), null)
})

t.test('a payload without sub or a known role, or not an object, is refused', async (t) => {
  for (const payload of [null, 'x', [good], { ...good, sub: '' }, { ...good, role: 'root' }, { ...good, sub: undefined }]) {
    t.match(refusal(payload), { code: 'UNAUTHORIZED' }, JSON.stringify(payload))
  }
  t.match(refusal({ ...good, iat: 'yesterday' }), { code: 'UNAUTHORIZED', detail: /"iat" is not a number/ })
})

t.test('a sub or jti holding text the database cannot store (NUL, a lone surrogate) is refused', async (t) => {
  for (const sub of ['rita\u0000', '\u0000', 'rita\uD800', '\uDC00x']) {
    t.match(refusal({ ...good, sub }), { code: 'UNAUTHORIZED', detail: /"sub" contains .*cannot be stored/ }, JSON.stringify(sub))
  }
  for (const jti of ['tok\u0000', 'tok\uDBFF']) {
    t.match(refusal({ ...good, jti }), { code: 'UNAUTHORIZED', detail: /"jti" contains .*cannot be stored/ }, JSON.stringify(jti))
  }
  // A whole astral character is a surrogate pair, which UTF-8 stores: it passes.
  t.equal(refusal({ ...good, sub: 'rita \u{1F680}' }), null)
})

t.test('isRole knows exactly reader, publisher and admin', async (t) => {
  t.same(['reader', 'publisher', 'admin', 'root', '', 1].map(isRole), [true, true, true, false, false, false])
})

import t from 'tap'
import { checkEntitlement, checkLicenseValidity, defaultChannel, describeNumericDate, isEntitled, isRevoked, operatorChannel, parseLicenseClaims, type LicenseClaims, type LicensePolicy, type RevocationSet } from '../../src/domain/license.js'

const NOW = 1_700_000_000
const open: LicensePolicy = { issuer: null, audience: null }
const none: RevocationSet = { jtis: new Set(), subs: new Map() }
const claims = (extra: Partial<LicenseClaims> = {}): LicenseClaims => ({ sub: 'cluster-1', exp: NOW + 60, channels: ['stable'], ...extra })

t.test('parseLicenseClaims keeps the known claims of a well-formed payload', async (t) => {
  const parsed = parseLicenseClaims({ sub: 's', exp: NOW, channels: ['a'], nbf: 1, iat: 2, jti: 'j', iss: 'i', aud: ['x'], channel: 'a', extra: 'ignored' })
  t.same(parsed, { sub: 's', exp: NOW, channels: ['a'], nbf: 1, iat: 2, jti: 'j', iss: 'i', aud: ['x'], channel: 'a' })
})

t.test('parseLicenseClaims refuses payloads without the required claims', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['array payload', []],
    ['null payload', null],
    ['no sub', { exp: NOW, channels: ['a'] }],
    ['empty sub', { sub: '', exp: NOW, channels: ['a'] }],
    ['no exp', { sub: 's', channels: ['a'] }],
    ['string exp', { sub: 's', exp: '1', channels: ['a'] }],
    ['no channels', { sub: 's', exp: NOW }],
    ['channels not strings', { sub: 's', exp: NOW, channels: [1] }],
    ['channels a string', { sub: 's', exp: NOW, channels: 'stable' }],
    ['nbf a string', { sub: 's', exp: NOW, channels: ['a'], nbf: 'x' }],
    ['jti a number', { sub: 's', exp: NOW, channels: ['a'], jti: 5 }],
    ['aud a number', { sub: 's', exp: NOW, channels: ['a'], aud: 5 }]
  ]
  for (const [name, payload] of cases) t.throws(() => parseLicenseClaims(payload), { code: 'LICENSE_INVALID' }, name)
})

t.test('a valid license passes the validity checks', async (t) => {
  t.doesNotThrow(() => checkLicenseValidity(claims(), NOW, open, none))
})

t.test('a license is expired at exp and after it', async (t) => {
  t.doesNotThrow(() => checkLicenseValidity(claims({ exp: NOW + 1 }), NOW, open, none))
  t.throws(() => checkLicenseValidity(claims({ exp: NOW }), NOW, open, none), { code: 'LICENSE_EXPIRED' })
  t.throws(() => checkLicenseValidity(claims({ exp: NOW - 100 }), NOW, open, none), { code: 'LICENSE_EXPIRED' })
})

t.test('a license is not yet valid before nbf and valid from it', async (t) => {
  t.throws(() => checkLicenseValidity(claims({ nbf: NOW + 1 }), NOW, open, none), { code: 'LICENSE_NOT_YET_VALID' })
  t.doesNotThrow(() => checkLicenseValidity(claims({ nbf: NOW }), NOW, open, none))
})

t.test('an issuer policy refuses other and missing issuers', async (t) => {
  const policy = { issuer: 'https://vendor.example', audience: null }
  t.doesNotThrow(() => checkLicenseValidity(claims({ iss: 'https://vendor.example' }), NOW, policy, none))
  t.throws(() => checkLicenseValidity(claims({ iss: 'https://evil.example' }), NOW, policy, none), { code: 'LICENSE_INVALID', message: /issuer/ })
  t.throws(() => checkLicenseValidity(claims(), NOW, policy, none), { code: 'LICENSE_INVALID' })
})

t.test('an audience policy accepts a string or an array containing it', async (t) => {
  const policy = { issuer: null, audience: 'chartcast' }
  t.doesNotThrow(() => checkLicenseValidity(claims({ aud: 'chartcast' }), NOW, policy, none))
  t.doesNotThrow(() => checkLicenseValidity(claims({ aud: ['other', 'chartcast'] }), NOW, policy, none))
  t.throws(() => checkLicenseValidity(claims({ aud: 'other' }), NOW, policy, none), { code: 'LICENSE_INVALID', message: /audience/ })
  t.throws(() => checkLicenseValidity(claims(), NOW, policy, none), { code: 'LICENSE_INVALID' })
})

t.test('a license revoked by jti is refused; other jtis pass', async (t) => {
  const revoked = { jtis: new Set(['j-1']), subs: new Map<string, number>() }
  t.throws(() => checkLicenseValidity(claims({ jti: 'j-1' }), NOW, open, revoked), { code: 'LICENSE_REVOKED' })
  t.doesNotThrow(() => checkLicenseValidity(claims({ jti: 'j-2' }), NOW, open, revoked))
  t.doesNotThrow(() => checkLicenseValidity(claims(), NOW, open, revoked), 'no jti')
})

t.test('a sub revocation refuses the licenses issued before it, in its second or without iat', async (t) => {
  const revoked = { jtis: new Set<string>(), subs: new Map([['cluster-1', NOW]]) }
  t.throws(() => checkLicenseValidity(claims({ iat: NOW - 3600, jti: 'any' }), NOW, open, revoked), { code: 'LICENSE_REVOKED', message: /deployment/ })
  t.ok(isRevoked(claims({ iat: NOW }), revoked), 'issued in the revocation\'s second: iat is truncated, so it may be older')
  t.ok(isRevoked(claims(), revoked), 'no iat: cannot show it is newer')
  t.notOk(isRevoked(claims({ iat: NOW + 1 }), revoked), 'a renewed license, issued after the revocation')
  t.doesNotThrow(() => checkLicenseValidity(claims({ iat: NOW + 1 }), NOW + 2, open, revoked))
  t.notOk(isRevoked(claims({ sub: 'cluster-2', iat: NOW - 3600 }), revoked), 'another deployment')
})

t.test('a jti revocation stays, whatever the iat', async (t) => {
  const revoked = { jtis: new Set(['j-1']), subs: new Map([['cluster-1', NOW - 7200]]) }
  t.ok(isRevoked(claims({ jti: 'j-1', iat: NOW }), revoked))
  t.throws(() => checkLicenseValidity(claims({ jti: 'j-1', iat: NOW }), NOW, open, revoked), { code: 'LICENSE_REVOKED', message: /^license has been revoked$/ })
  t.notOk(isRevoked(claims({ jti: 'j-2', iat: NOW }), revoked))
})

t.test('a license with "channels": [] is valid and entitles nothing', async (t) => {
  const empty = parseLicenseClaims({ sub: 's', exp: NOW + 60, channels: [] })
  t.same(empty.channels, [])
  t.doesNotThrow(() => checkLicenseValidity(empty, NOW, open, none))
  t.throws(() => checkEntitlement(empty, 'stable'), { code: 'CHANNEL_NOT_ENTITLED' })
  t.throws(() => operatorChannel(empty), { code: 'CHANNEL_NOT_ENTITLED' })
  t.throws(() => operatorChannel({ ...empty, channel: 'stable' }), { code: 'CHANNEL_NOT_ENTITLED' }, 'a channel claim does not entitle')
})

t.test('operatorChannel: the default channel, entitlement checked; none named is CHANNEL_NOT_FOUND', async (t) => {
  t.equal(operatorChannel(claims({ channels: ['stable', 'beta'], channel: 'beta' })), 'beta')
  t.throws(() => operatorChannel(claims({ channels: ['stable'], channel: 'beta' })), { code: 'CHANNEL_NOT_ENTITLED' })
  t.throws(() => operatorChannel(claims({ channels: ['*'] })), { code: 'CHANNEL_NOT_FOUND' })
})

t.test('entitlement: named channels or the wildcard', async (t) => {
  t.ok(isEntitled(claims({ channels: ['stable', 'beta'] }), 'beta'))
  t.notOk(isEntitled(claims({ channels: ['stable'] }), 'beta'))
  t.ok(isEntitled(claims({ channels: ['*'] }), 'anything'))
  t.throws(() => checkEntitlement(claims({ channels: ['stable'] }), 'beta'), { code: 'CHANNEL_NOT_ENTITLED', message: /beta/ })
})

t.test('defaultChannel: the channel claim, else the first named channel, else null', async (t) => {
  t.equal(defaultChannel(claims({ channel: 'beta', channels: ['stable', 'beta'] })), 'beta')
  t.equal(defaultChannel(claims({ channels: ['stable', 'beta'] })), 'stable')
  t.equal(defaultChannel(claims({ channels: ['*', 'dev'] })), 'dev')
  t.equal(defaultChannel(claims({ channels: ['*'] })), null)
})

t.test('describeNumericDate prints an ISO date inside the Date range and the number outside it', async (t) => {
  t.equal(describeNumericDate(0), '1970-01-01T00:00:00.000Z')
  t.equal(describeNumericDate(1.5), '1970-01-01T00:00:01.500Z', 'non-integer NumericDates are allowed (RFC 7519 2)')
  t.equal(describeNumericDate(8.64e12), '+275760-09-13T00:00:00.000Z', 'the last instant a Date holds')
  t.equal(describeNumericDate(-8.64e12), '-271821-04-20T00:00:00.000Z', 'the first instant a Date holds')
  for (const seconds of [8.64e12 + 1, -8.64e12 - 1, 9e15, 1e300, -1e300, Number.MAX_VALUE, -Number.MAX_VALUE]) {
    t.equal(describeNumericDate(seconds), `NumericDate ${seconds} (beyond the calendar)`, String(seconds))
  }
})

t.test('an exp or nbf beyond the Date range is refused like any other, not thrown as a RangeError', async (t) => {
  for (const exp of [-1e300, -9e15, -Number.MAX_VALUE]) {
    t.throws(() => checkLicenseValidity(claims({ exp }), NOW, open, none), { code: 'LICENSE_EXPIRED', message: `license expired at NumericDate ${exp} (beyond the calendar)` }, `exp ${exp}`)
  }
  for (const nbf of [9e15, 1e300, Number.MAX_VALUE]) {
    t.throws(() => checkLicenseValidity(claims({ nbf }), NOW, open, none), { code: 'LICENSE_NOT_YET_VALID', message: `license is valid from NumericDate ${nbf} (beyond the calendar)` }, `nbf ${nbf}`)
  }
  t.throws(() => checkLicenseValidity(claims({ nbf: NOW + 0.5 }), NOW, open, none), { code: 'LICENSE_NOT_YET_VALID', message: /^license is valid from 2023-11-14T22:13:20\.500Z$/ })
})

t.test('a far-future exp, a far-past nbf and any iat leave a license valid (they do not end it)', async (t) => {
  t.doesNotThrow(() => checkLicenseValidity(claims({ exp: 1e300 }), NOW, open, none))
  t.doesNotThrow(() => checkLicenseValidity(claims({ nbf: -1e300 }), NOW, open, none))
  t.doesNotThrow(() => checkLicenseValidity(claims({ iat: 1e300 }), NOW, open, none))
  t.doesNotThrow(() => checkLicenseValidity(claims({ iat: -1e300 }), NOW, open, none))
})

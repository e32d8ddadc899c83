/** The session and single sign-on settings: defaults, and a clear error for each misconfiguration. */
import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

const OIDC = {
  PUBLIC_URL: 'https://chartcast.example.com',
  OIDC_ISSUER: 'https://sso.example.com/realms/acme',
  OIDC_CLIENT_ID: 'chartcast',
  OIDC_CLIENT_SECRET: 'secret',
  OIDC_ROLES: 'chartcast-admins=admin,*=reader'
}

t.test('defaults: no single sign-on, 12 h sessions, no PUBLIC_URL', async (t) => {
  const config = loadConfig({})
  t.equal(config.oidc, null)
  t.equal(config.sessionMaxAgeSeconds, 12 * 3600)
  t.equal(config.publicOrigin, null)
  t.equal(config.sessionSecret, null)
})

t.test('a complete OIDC configuration is read, with the callback under PUBLIC_URL', async (t) => {
  const config = loadConfig({ ...OIDC, OIDC_ROLE_CLAIM: 'realm_access.roles', OIDC_SCOPES: 'email groups' })
  t.same(config.oidc, {
    issuer: OIDC.OIDC_ISSUER,
    clientId: 'chartcast',
    clientSecret: 'secret',
    roleClaim: 'realm_access.roles',
    roles: [{ value: 'chartcast-admins', role: 'admin' }, { value: '*', role: 'reader' }],
    scopes: 'openid email groups',
    redirectUri: 'https://chartcast.example.com/auth/oidc/callback'
  })
  t.equal(loadConfig(OIDC).oidc?.roleClaim, 'groups', 'groups by default')
  t.equal(loadConfig(OIDC).oidc?.scopes, 'openid email profile')
})

t.test('PUBLIC_URL is an origin: a trailing slash is fine, a path or credentials are not', async (t) => {
  t.equal(loadConfig({ PUBLIC_URL: 'https://chartcast.example.com/' }).publicOrigin, 'https://chartcast.example.com')
  t.equal(loadConfig({ PUBLIC_URL: 'http://chartcast.example.com:80' }).publicOrigin, 'http://chartcast.example.com')
  for (const bad of ['chartcast.example.com', 'ftp://chartcast.example.com', 'https://chartcast.example.com/ui', 'https://u:p@chartcast.example.com', 'https://chartcast.example.com/?a=1']) {
    t.throws(() => loadConfig({ PUBLIC_URL: bad }), { name: 'ConfigError', message: /PUBLIC_URL/ }, bad)
  }
})

t.test('misconfigured single sign-on stops start-up with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ OIDC_ISSUER: OIDC.OIDC_ISSUER }, /needs OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_ROLES too/],
    [{ ...OIDC, OIDC_CLIENT_SECRET: '' }, /needs OIDC_CLIENT_SECRET/],
    [{ OIDC_ROLES: 'a=admin' }, /needs OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET too/],
    [{ ...OIDC, PUBLIC_URL: '' }, /needs PUBLIC_URL/],
    [{ ...OIDC, OIDC_ISSUER: 'not a url' }, /OIDC_ISSUER must be/],
    [{ ...OIDC, OIDC_ISSUER: 'ftp://sso.example.com' }, /OIDC_ISSUER must be an https:\/\/ URL/],
    [{ ...OIDC, OIDC_ROLES: 'chartcast-admins=root' }, /OIDC_ROLES: entry 1 .*role must be one of reader, publisher, admin/],
    [{ ...OIDC, OIDC_ROLES: 'chartcast-admins' }, /OIDC_ROLES: .*claim-value=role/],
    [{ ...OIDC, OIDC_ISSUER: 'http://sso.example.com', NODE_ENV: 'production' }, /https:\/\/ URL \(http:\/\/ is accepted outside NODE_ENV=production only\)/]
  ]
  for (const [env, message] of cases) t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  t.equal(loadConfig({ ...OIDC, OIDC_ISSUER: 'http://127.0.0.1:5556/dex' }).oidc?.issuer, 'http://127.0.0.1:5556/dex', 'http:// in development')
})

t.test('an unknown OIDC_ variable stops start-up, naming the one probably meant', async (t) => {
  t.throws(() => loadConfig({ ...OIDC, OIDC_ROLE: 'x=admin' }), { name: 'ConfigError', message: /^OIDC_ROLE is not a chartcast setting; did you mean OIDC_ROLES\?/ })
  t.throws(() => loadConfig({ OIDC_ISUER: 'https://sso.example.com' }), { message: /did you mean OIDC_ISSUER\?/ })
  t.throws(() => loadConfig({ OIDC_FOO_BAR_BAZ: '1' }), { message: /^OIDC_FOO_BAR_BAZ is not a chartcast setting \(single sign-on reads/ })
  t.equal(loadConfig({ OIDC_TYPO: '' }).oidc, null, 'an empty one is as good as unset')
})

t.test('SESSION_SECRET and SESSION_MAX_AGE are checked', async (t) => {
  t.throws(() => loadConfig({ SESSION_SECRET: 'short' }), new ConfigError('SESSION_SECRET must be at least 32 characters (it keys the session cookie)'))
  t.equal(loadConfig({ SESSION_MAX_AGE: '8h' }).sessionMaxAgeSeconds, 8 * 3600)
  for (const bad of ['30s', '31d', 'soon', '1500ms']) t.throws(() => loadConfig({ SESSION_MAX_AGE: bad }), { message: /SESSION_MAX_AGE/ }, bad)
})

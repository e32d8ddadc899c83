/** `chartcast serve` with single sign-on half configured: it does not start, and says what is missing. */
import t from 'tap'
import { runCli } from '../helpers/cli.js'

t.test('serve refuses to start with OIDC_ISSUER but no client or role mapping, naming them', async (t) => {
  const result = await runCli(['serve'], { OIDC_ISSUER: 'https://sso.example.com/realms/acme', PORT: '0' })
  t.not(result.code, 0)
  t.match(result.stderr, /single sign-on needs OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_ROLES too/)
  t.notMatch(result.stderr, /at .*\.ts:\d+/, 'a message, not a stack trace')
})

t.test('serve refuses to start on a role mapping that does not parse', async (t) => {
  const result = await runCli(['serve'], {
    PUBLIC_URL: 'https://chartcast.example.com',
    OIDC_ISSUER: 'https://sso.example.com/realms/acme',
    OIDC_CLIENT_ID: 'chartcast',
    OIDC_CLIENT_SECRET: 'secret',
    OIDC_ROLES: 'chartcast-admins=superuser',
    PORT: '0'
  })
  t.not(result.code, 0)
  t.match(result.stderr, /OIDC_ROLES: entry 1 \("chartcast-admins=superuser"\): role must be one of reader, publisher, admin/)
})

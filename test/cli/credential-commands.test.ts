/** `token create` and `license issue` output: the jti revocation needs, lifetimes, key mistakes. */
import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { decodeJwt } from 'jose'
import { runCli, type CliResult } from '../helpers/cli.js'

const SECRET = 'cli-test-secret-that-is-long-enough-0123456789'

t.test('token create --help shows the default lifetime as a duration', async (t) => {
  const help = await runCli(['token', 'create', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--expires <duration>[^]*\(default:\s+30d\)/)
})

t.test('token create gives every token a random jti, printed on stderr; stdout is the token alone; 30 days by default', async (t) => {
  const first = await runCli(['token', 'create', '--sub', 'ci-bot', '--role', 'reader'], { AUTH_SECRET: SECRET })
  const second = await runCli(['token', 'create', '--sub', 'ci-bot', '--role', 'reader'], { AUTH_SECRET: SECRET })
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/)
  const claims = decodeJwt(first.stdout.trim())
  t.type(claims.jti, 'string')
  t.not(claims.jti, decodeJwt(second.stdout.trim()).jti)
  t.match(first.stderr, new RegExp(`jti: ${claims.jti as string}`))
  t.equal((claims.exp ?? 0) - (claims.iat ?? 0), 30 * 86400)
})

t.test('token create --json prints the token, its jti and expiry', async (t) => {
  const result = await runCli(['token', 'create', '--sub', 'ci-bot', '--role', 'reader', '--expires', '1h', '--json'], { AUTH_SECRET: SECRET })
  t.equal(result.code, 0, result.stderr)
  const out = JSON.parse(result.stdout) as { token: string, jti: string, expiresAt: string }
  const claims = decodeJwt(out.token)
  t.equal(out.jti, claims.jti)
  t.equal(Date.parse(out.expiresAt), (claims.exp ?? 0) * 1000)
})

t.test('token create refuses an --expires beyond PUBLISHER_TOKEN_MAX_LIFETIME and caps its default at it', async (t) => {
  const beyondDefault = await runCli(['token', 'create', '--sub', 'x', '--role', 'reader', '--expires', '1y'], { AUTH_SECRET: SECRET })
  t.not(beyondDefault.code, 0)
  t.match(beyondDefault.stderr, /--expires 1y is beyond PUBLISHER_TOKEN_MAX_LIFETIME \(90d\)/)
  t.equal(beyondDefault.stdout, '')
  const beyondConfigured = await runCli(['token', 'create', '--sub', 'x', '--role', 'reader', '--expires', '8d'], { AUTH_SECRET: SECRET, PUBLISHER_TOKEN_MAX_LIFETIME: '7d' })
  t.match(beyondConfigured.stderr, /beyond PUBLISHER_TOKEN_MAX_LIFETIME \(7d\)/)
  const capped = await runCli(['token', 'create', '--sub', 'x', '--role', 'reader'], { AUTH_SECRET: SECRET, PUBLISHER_TOKEN_MAX_LIFETIME: '7d' })
  t.equal(capped.code, 0, capped.stderr)
  const claims = decodeJwt(capped.stdout.trim())
  t.equal((claims.exp ?? 0) - (claims.iat ?? 0), 7 * 86400)
})

t.test('license issue', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-cli-'))
  t.equal((await runCli(['license', 'keygen', '--out', dir])).code, 0)
  const issue = async (args: string[]): Promise<CliResult> => await runCli(['license', 'issue', '--sub', 'acme-prod', '--channels', 'stable', ...args])

  t.test('prints the jti on stderr, keeps stdout the license alone, and accepts --expires 1y', async (t) => {
    const issued = await issue(['--key', path.join(dir, 'license-private.pem'), '--expires', '1y'])
    t.equal(issued.code, 0, issued.stderr)
    t.match(issued.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/)
    const claims = decodeJwt(issued.stdout.trim())
    t.equal((claims.exp ?? 0) - (claims.iat ?? 0), 365 * 86400)
    t.type(claims.jti, 'string')
    t.match(issued.stderr, new RegExp(`license jti: ${claims.jti as string}`))
  })

  t.test('--json prints the license, its jti and expiry', async (t) => {
    const issued = await issue(['--key', path.join(dir, 'license-private.pem'), '--expires', '30d', '--jti', 'lic-7', '--json'])
    t.equal(issued.code, 0, issued.stderr)
    const out = JSON.parse(issued.stdout) as { token: string, jti: string, expiresAt: string }
    t.equal(out.jti, 'lic-7')
    t.equal(decodeJwt(out.token).jti, 'lic-7')
    t.equal(Date.parse(out.expiresAt), (decodeJwt(out.token).exp ?? 0) * 1000)
  })

  t.test('with the public key, says to sign with the private key', async (t) => {
    const result = await issue(['--key', path.join(dir, 'license-public.pem'), '--expires', '30d'])
    t.not(result.code, 0)
    t.match(result.stderr, /this is a public key; sign with the private key/)
    t.notMatch(result.stderr, /DECODER|error:[0-9A-F]{8}/)
    t.equal(result.stdout, '')
  })
})

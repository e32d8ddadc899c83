import t from 'tap'
import { mkdtempSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { loadLicenseKeys, LicenseVerifier } from '../../src/services/license-verifier.js'
import { runCli } from '../helpers/cli.js'

const SECRET = 'cli-test-secret-that-is-long-enough-0123456789'

t.test('every command has --help', async (t) => {
  for (const args of [['--help'], ['serve', '--help'], ['migrate', '--help'], ['sync', '--help'], ['token', 'create', '--help'], ['license', 'keygen', '--help'], ['license', 'issue', '--help'], ['agent', '--help'], ['audit', 'verify', '--help']]) {
    const result = await runCli(args)
    t.equal(result.code, 0, args.join(' '))
    t.match(result.stdout, /Usage: chartcast/, args.join(' '))
  }
})

t.test('--help shows duration defaults as durations in the form the option takes, never as milliseconds', async (t) => {
  const expected: Array<[string[], RegExp]> = [
    [['keys', 'init', '--help'], /--expires <duration>[^]*?\(default:\s+365d\)/],
    [['keys', 'rotate', '--help'], /--expires <duration>[^]*?\(default:\s+365d\)/],
    [['bundle', 'export', '--help'], /--ttl <duration>[^]*?\(default:\s+30d\)/],
    [['token', 'create', '--help'], /--expires <duration>[^]*?\(default:\s+30d\)/]
  ]
  for (const [args, pattern] of expected) {
    const help = await runCli(args)
    t.equal(help.code, 0, args.join(' '))
    t.match(help.stdout, pattern, args.join(' '))
  }
  const commands = [[], ['serve'], ['migrate'], ['sync'], ['token', 'create'], ['license', 'keygen'], ['license', 'issue'], ['agent'], ['audit', 'verify'], ['keys', 'init'], ['keys', 'rotate'], ['bundle', 'export'], ['bundle', 'verify']]
  for (const command of commands) {
    const help = await runCli([...command, '--help'])
    // Commander wraps long lines, so a default may start on the next line.
    t.notMatch(help.stdout.replace(/\s+/g, ' '), /\(default: \d{4,}\)/, `chartcast ${command.join(' ')} --help shows no number of milliseconds or seconds as a default`)
  }
})

t.test('token create mints an HS256 token with sub, role and expiry', async (t) => {
  const result = await runCli(['token', 'create', '--sub', 'ci-bot', '--role', 'publisher', '--expires', '2h'], { AUTH_SECRET: SECRET })
  t.equal(result.code, 0, result.stderr)
  const { payload, protectedHeader } = await jwtVerify(result.stdout.trim(), new TextEncoder().encode(SECRET), { algorithms: ['HS256'] })
  t.equal(protectedHeader.alg, 'HS256')
  t.equal(payload.sub, 'ci-bot')
  t.equal(payload.role, 'publisher')
  t.equal((payload.exp ?? 0) - (payload.iat ?? 0), 7200)
})

t.test('token create under NODE_ENV=production needs AUTH_SECRET: a development secret under DATA_DIR is not used', async (t) => {
  const dataDir = t.testdir({ 'dev-keys': { 'auth-secret': 'a-development-secret-that-the-production-server-never-uses' } })
  const refused = await runCli(['token', 'create', '--sub', 'ci-bot', '--role', 'publisher'], { NODE_ENV: 'production', DATA_DIR: dataDir })
  t.not(refused.code, 0)
  t.match(refused.stderr, /AUTH_SECRET is not set \(with NODE_ENV=production no development secret is used\)/)
  t.equal(refused.stdout, '', 'no token printed')
  const development = await runCli(['token', 'create', '--sub', 'ci-bot', '--role', 'publisher'], { DATA_DIR: dataDir })
  t.equal(development.code, 0, 'outside production the development secret signs: ' + development.stderr)
})

t.test('token create refuses an unknown role', async (t) => {
  const result = await runCli(['token', 'create', '--sub', 'x', '--role', 'root'], { AUTH_SECRET: SECRET })
  t.not(result.code, 0)
  t.match(result.stderr, /role must be one of reader, publisher, admin/)
})

t.test('license keygen then issue gives a license the server verifies', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-cli-'))
  const keygen = await runCli(['license', 'keygen', '--out', dir, '--alg', 'EdDSA'])
  t.equal(keygen.code, 0, keygen.stderr)
  t.equal(statSync(path.join(dir, 'license-private.pem')).mode & 0o777, 0o600)
  const issued = await runCli(['license', 'issue', '--key', path.join(dir, 'license-private.pem'), '--sub', 'acme-prod', '--channels', 'stable,beta', '--channel', 'beta', '--expires', '365d', '--jti', 'lic-42'])
  t.equal(issued.code, 0, issued.stderr)
  const token = issued.stdout.trim()
  t.equal(decodeProtectedHeader(token).alg, 'EdDSA')
  const claims = decodeJwt(token)
  t.same({ sub: claims.sub, channels: claims.channels, channel: claims.channel, jti: claims.jti }, { sub: 'acme-prod', channels: ['stable', 'beta'], channel: 'beta', jti: 'lic-42' })
  t.equal((claims.exp ?? 0) - (claims.iat ?? 0), 365 * 86400)
  const verifier = new LicenseVerifier(await loadLicenseKeys([path.join(dir, 'license-public.pem')]))
  t.equal((await verifier.verify(token)).sub, 'acme-prod')
})

t.test('license keygen refuses to overwrite an existing signing key', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-cli-'))
  t.equal((await runCli(['license', 'keygen', '--out', dir])).code, 0)
  const before = readFileSync(path.join(dir, 'license-private.pem'), 'utf8')
  const again = await runCli(['license', 'keygen', '--out', dir])
  t.not(again.code, 0)
  t.match(again.stderr, /refusing to overwrite/)
  t.equal(readFileSync(path.join(dir, 'license-private.pem'), 'utf8'), before)
})

t.test('license issue refuses a bad duration', async (t) => {
  const result = await runCli(['license', 'issue', '--key', '/nonexistent', '--sub', 'a', '--channels', 'stable', '--expires', 'forever'])
  t.not(result.code, 0)
  t.match(result.stderr, /not a duration/)
})

t.test('migrate then sync loads channel files into the embedded database, idempotently', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-cli-'))
  const migrate = await runCli(['migrate'], { DATA_DIR: dataDir })
  t.equal(migrate.code, 0, migrate.stderr)
  t.match(migrate.stdout, /migrations applied \(pglite\)/)
  const first = await runCli(['sync', 'channels'], { DATA_DIR: dataDir })
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /created: beta, dev, stable/)
  const second = await runCli(['sync', 'channels'], { DATA_DIR: dataDir })
  t.match(second.stdout, /created: -; updated: -; unchanged: beta, dev, stable/)
})

t.test('sync with one broken file names file and line and writes nothing', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-cli-'))
  const channelsDir = path.join(dataDir, 'channels')
  mkdirSync(channelsDir)
  writeFileSync(path.join(channelsDir, 'alpha.yaml'), 'name: alpha\nvalues:\n  a: 1\n')
  writeFileSync(path.join(channelsDir, 'beta.yaml'), 'name: beta\nvalues:\n  a: [1, 2\n')
  const broken = await runCli(['sync', channelsDir], { DATA_DIR: dataDir })
  t.not(broken.code, 0)
  t.match(broken.stderr, /beta\.yaml: line \d+/)
  writeFileSync(path.join(channelsDir, 'beta.yaml'), 'name: beta\n')
  const fixed = await runCli(['sync', channelsDir], { DATA_DIR: dataDir })
  // alpha is created only now: the failed run wrote nothing.
  t.match(fixed.stdout, /created: alpha, beta/)
})

t.test('serve refuses to start on a bad configuration value', async (t) => {
  const result = await runCli(['serve'], { PORT: 'eighty' })
  t.not(result.code, 0)
  t.match(result.stderr, /PORT must be a whole number/)
})

t.test('serve refuses to start on a broken channel file, naming it', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-cli-'))
  const channelsDir = path.join(dataDir, 'channels')
  mkdirSync(channelsDir)
  writeFileSync(path.join(channelsDir, 'stable.yaml'), 'name: production\n')
  const result = await runCli(['serve'], { DATA_DIR: dataDir, CHANNELS_DIR: channelsDir, PORT: '0', AUTH_SECRET: SECRET })
  t.not(result.code, 0)
  t.match(result.stderr, /stable\.yaml: name "production" does not match the file name "stable"/)
})

t.test('serve refuses to start on a misspelt channel-file key, naming the key and the one meant', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-cli-'))
  const channelsDir = path.join(dataDir, 'channels')
  mkdirSync(channelsDir)
  writeFileSync(path.join(channelsDir, 'stable.yaml'), 'name: stable\nacepts: ">=1.0.0"\n')
  const result = await runCli(['serve'], { DATA_DIR: dataDir, CHANNELS_DIR: channelsDir, PORT: '0', AUTH_SECRET: SECRET })
  t.not(result.code, 0)
  t.match(result.stderr, /stable\.yaml: unknown key "acepts"; did you mean "accepts"\? allowed: name, description, values, accepts, pollInterval/)
  t.notMatch(result.stderr, /schema is false/)
})

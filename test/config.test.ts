import t from 'tap'
import path from 'node:path'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { ConfigError, loadConfig } from '../src/config.js'
import { loadEnvFile } from '../src/config.js'

t.test('defaults: what a fresh clone runs with', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    port: 8080,
    host: '0.0.0.0',
    databaseUrl: null,
    dataDir: path.resolve('./data'),
    channelsDir: path.resolve('./channels'),
    logLevel: 'info',
    licensePublicKeys: [],
    authSecret: null,
    publisherTokenMaxLifetimeSeconds: 90 * 86400,
    anonymousChannel: null,
    rateLimitSpec: 600,
    rateLimitApi: 300,
    rateLimitLicenseFailures: 0,
    rateLimitWindowMs: 60_000,
    bodyLimitBytes: 1_048_576,
    trustProxy: false,
    startupTimeoutMs: 300_000,
    requestTimeoutMs: 30_000,
    headersTimeoutMs: 10_000,
    keepAliveTimeoutMs: 72_000,
    maxConnections: 10_000,
    maxConnectionsPerAddress: 100
  })
})

t.test('timeouts are durations; the headers timeout follows a short request timeout', async (t) => {
  t.match(loadConfig({ REQUEST_TIMEOUT: '2m', HEADERS_TIMEOUT: '5s', KEEP_ALIVE_TIMEOUT: '5s' }), { requestTimeoutMs: 120_000, headersTimeoutMs: 5_000, keepAliveTimeoutMs: 5_000 })
  t.match(loadConfig({ REQUEST_TIMEOUT: '2s' }), { requestTimeoutMs: 2_000, headersTimeoutMs: 2_000 })
  t.match(loadConfig({ STARTUP_TIMEOUT: '15m' }), { startupTimeoutMs: 900_000 })
})

t.test('values are parsed and trimmed; blank means unset', async (t) => {
  const config = loadConfig({
    PORT: ' 9090 ',
    DATABASE_URL: 'postgresql://db.internal/chartcast',
    LICENSE_PUBLIC_KEYS: 'keys/a.pem, keys/b.jwks.json,',
    RATE_LIMIT_SPEC: '0',
    RATE_LIMIT_LICENSE_FAILURES: '5',
    RATE_LIMIT_WINDOW: '30s',
    TRUST_PROXY: 'yes',
    ANONYMOUS_CHANNEL: '   ',
    LOG_LEVEL: 'debug'
  })
  t.equal(config.port, 9090)
  t.equal(config.databaseUrl, 'postgresql://db.internal/chartcast')
  t.same(config.licensePublicKeys, [path.resolve('keys/a.pem'), path.resolve('keys/b.jwks.json')])
  t.equal(config.rateLimitSpec, 0, '0 disables the spec limit')
  t.equal(config.rateLimitLicenseFailures, 5)
  t.equal(config.rateLimitWindowMs, 30_000)
  t.equal(config.trustProxy, true)
  t.equal(config.anonymousChannel, null)
  t.equal(config.logLevel, 'debug')
})

t.test('PUBLISHER_TOKEN_MAX_LIFETIME is read as a duration, years included', async (t) => {
  t.equal(loadConfig({ PUBLISHER_TOKEN_MAX_LIFETIME: '7d' }).publisherTokenMaxLifetimeSeconds, 7 * 86400)
  t.equal(loadConfig({ PUBLISHER_TOKEN_MAX_LIFETIME: '1y' }).publisherTokenMaxLifetimeSeconds, 365 * 86400)
})

t.test('bad values stop the server with a message naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: '80a' }, /PORT must be a whole number/],
    [{ PORT: '70000' }, /PORT must be between 0 and 65535/],
    [{ RATE_LIMIT_LICENSE_FAILURES: '-1' }, /RATE_LIMIT_LICENSE_FAILURES must be a whole number/],
    [{ RATE_LIMIT_SPEC: '1.5' }, /RATE_LIMIT_SPEC must be a whole number/],
    [{ RATE_LIMIT_WINDOW: '500ms' }, /RATE_LIMIT_WINDOW must be a duration of at least 1s/],
    [{ RATE_LIMIT_WINDOW: 'soon' }, /RATE_LIMIT_WINDOW/],
    [{ DATABASE_URL: 'mysql://db/chartcast' }, /DATABASE_URL must be a postgres/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
    [{ AUTH_SECRET: 'short' }, /AUTH_SECRET must be at least 32 characters/],
    [{ BODY_LIMIT: '10' }, /BODY_LIMIT must be between/],
    [{ TRUST_PROXY: 'maybe' }, /TRUST_PROXY must be true or false/],
    [{ PUBLISHER_TOKEN_MAX_LIFETIME: 'forever' }, /PUBLISHER_TOKEN_MAX_LIFETIME must be a duration/],
    [{ PUBLISHER_TOKEN_MAX_LIFETIME: '30s' }, /PUBLISHER_TOKEN_MAX_LIFETIME .*at least 1m/],
    [{ PUBLISHER_TOKEN_MAX_LIFETIME: '1h500ms' }, /PUBLISHER_TOKEN_MAX_LIFETIME must be a duration of whole seconds/],
    [{ REQUEST_TIMEOUT: '30' }, /REQUEST_TIMEOUT must be a duration/],
    [{ STARTUP_TIMEOUT: '500ms' }, /STARTUP_TIMEOUT must be a duration of at least 1000 ms/],
    [{ STARTUP_TIMEOUT: 'soon' }, /STARTUP_TIMEOUT must be a duration/],
    [{ REQUEST_TIMEOUT: '10ms' }, /REQUEST_TIMEOUT must be a duration of at least 100 ms/],
    [{ REQUEST_TIMEOUT: '5s', HEADERS_TIMEOUT: '10s' }, /HEADERS_TIMEOUT must not be longer than REQUEST_TIMEOUT/],
    [{ MAX_CONNECTIONS: 'many' }, /MAX_CONNECTIONS must be a whole number/],
    [{ RESYNC_INTERVAL: '50ms' }, /RESYNC_INTERVAL must be a duration between 100ms and 1d/],
    [{ RESYNC_INTERVAL: 'often' }, /RESYNC_INTERVAL must be a duration/],
    [{ LISTEN_HEARTBEAT_INTERVAL: '2d' }, /LISTEN_HEARTBEAT_INTERVAL must be a duration between 100ms and 1d/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
  t.throws(() => loadConfig({ PORT: 'x' }), ConfigError)
})

t.test('loadEnvFile: the file fills gaps, the real environment wins, no file is fine', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-env-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, '.env')
  t.equal(loadEnvFile(file, {}), false, 'a missing file reads nothing')
  writeFileSync(file, '# comment\n\nPORT=9090\nexport LOG_LEVEL=debug\nAUTH_SECRET="from the file"\nHOST=10.0.0.1 # trailing comment\nMULTI="one\ntwo"\n')
  const env: Record<string, string | undefined> = { PORT: '7070', HOST: '' }
  t.equal(loadEnvFile(file, env), true)
  t.same(env, { PORT: '7070', HOST: '', LOG_LEVEL: 'debug', AUTH_SECRET: 'from the file', MULTI: 'one\ntwo' }, 'set variables, even empty ones, keep their values')
})

t.test('loadEnvFile: a malformed file stops with the line, not its text', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-env-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, '.env')
  writeFileSync(file, 'PORT=9090\nAUTH_SECRET hunter2-secret\n')
  const env: Record<string, string | undefined> = {}
  t.throws(() => loadEnvFile(file, env), { name: 'ConfigError', message: `${file} line 2: expected NAME=value` })
  t.same(env, {}, 'nothing is loaded from a broken file')
  writeFileSync(file, 'PORT=9090\nAUTH_SECRET="never closed\nHOST=x\n')
  t.throws(() => loadEnvFile(file, env), { name: 'ConfigError', message: `${file} line 2: the quoted value is never closed` })
  writeFileSync(file, '1PORT=9090\n')
  t.throws(() => loadEnvFile(file, env), { name: 'ConfigError', message: /line 1: expected NAME=value/ })
})

t.test('NODE_ENV=production sets production', async (t) => {
  t.equal(loadConfig({}).production, false)
  t.equal(loadConfig({ NODE_ENV: 'development' }).production, false)
  t.equal(loadConfig({ NODE_ENV: 'production' }).production, true)
})

t.test('RESYNC_INTERVAL and LISTEN_HEARTBEAT_INTERVAL: 30s and 10s by default, any duration from 100ms', async (t) => {
  t.match(loadConfig({}), { resyncIntervalMs: 30_000, listenHeartbeatMs: 10_000 })
  t.match(loadConfig({ RESYNC_INTERVAL: '2m', LISTEN_HEARTBEAT_INTERVAL: '100ms' }), { resyncIntervalMs: 120_000, listenHeartbeatMs: 100 })
})

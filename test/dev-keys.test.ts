import t from 'tap'
import { randomBytes } from 'node:crypto'
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ensureDevMaterial, missingProductionKeys } from '../src/dev-keys.js'
import { generateLicenseKeyPair } from '../src/license-tools.js'
import { runCli } from './helpers/cli.js'

const fresh = (t: { teardown (fn: () => void): void }): string => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-dev-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the first start generates, later starts reuse and say so', async (t) => {
  const dataDir = fresh(t)
  const first = await ensureDevMaterial(dataDir, true, true)
  t.same(first.generated, { licenseKeys: true, authSecret: true })
  const second = await ensureDevMaterial(dataDir, true, true)
  t.same(second.generated, { licenseKeys: false, authSecret: false }, 'reused, not reported as generated')
  t.equal(second.authSecret, first.authSecret)
  t.equal(readFileSync(second.licensePublicKeys![0]!, 'utf8'), readFileSync(first.licensePublicKeys![0]!, 'utf8'))
})

t.test('only what is missing is made: a configured secret is left to the config', async (t) => {
  const dataDir = fresh(t)
  const material = await ensureDevMaterial(dataDir, true, false)
  t.equal(material.authSecret, null)
  t.same(material.generated, { licenseKeys: true, authSecret: false })
  t.same(readdirSync(path.join(dataDir, 'dev-keys')).sort(), ['license-private.pem', 'license-public.pem'], 'no secret file, no temporary or lock leftovers')
})

t.test('every file is owner-only, the public key too', async (t) => {
  const dataDir = fresh(t)
  await ensureDevMaterial(dataDir, true, true)
  for (const name of ['license-private.pem', 'license-public.pem', 'auth-secret']) {
    t.equal(lstatSync(path.join(dataDir, 'dev-keys', name)).mode & 0o777, 0o600, name)
  }
  t.equal(lstatSync(path.join(dataDir, 'dev-keys')).mode & 0o777, 0o700)
})

t.test('starts at the same moment end with one key pair and one secret', async (t) => {
  const dataDir = fresh(t)
  const all = await Promise.all(Array.from({ length: 4 }, async () => await ensureDevMaterial(dataDir, true, true)))
  t.equal(all.filter((material) => material.generated.licenseKeys).length, 1, 'one of them generated the pair')
  t.equal(all.filter((material) => material.generated.authSecret).length, 1, 'one of them generated the secret')
  t.equal(new Set(all.map((material) => material.authSecret)).size, 1, 'all use the same secret')
})

t.test('missingProductionKeys names what is not configured', async (t) => {
  t.same(missingProductionKeys({ licensePublicKeys: [], authSecret: null }), ['LICENSE_PUBLIC_KEYS', 'AUTH_SECRET'])
  t.same(missingProductionKeys({ licensePublicKeys: ['/k.pem'], authSecret: null }), ['AUTH_SECRET'])
  t.same(missingProductionKeys({ licensePublicKeys: ['/k.pem'], authSecret: 'x'.repeat(32) }), [])
})

t.test('NODE_ENV=production without keys: serve refuses, names what is missing, generates and prints nothing', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /NODE_ENV=production, but LICENSE_PUBLIC_KEYS and AUTH_SECRET are not set/],
    [{ LICENSE_PUBLIC_KEYS: '/etc/chartcast/license-public.pem' }, /NODE_ENV=production, but AUTH_SECRET is not set/],
    [{ AUTH_SECRET: randomBytes(32).toString('hex') }, /NODE_ENV=production, but LICENSE_PUBLIC_KEYS is not set/]
  ]
  for (const [env, message] of cases) {
    const dataDir = fresh(t)
    const result = await runCli(['serve'], { NODE_ENV: 'production', DATA_DIR: dataDir, CHANNELS_DIR: path.join(dataDir, 'none'), PORT: '0', ...env })
    t.not(result.code, 0, Object.keys(env).join(',') || 'no keys')
    t.match(result.stderr, message)
    t.notMatch(result.stdout + result.stderr, /admin token|DEVELOPMENT MODE/, 'no development credentials')
    t.same(readdirSync(dataDir), [], 'nothing generated under DATA_DIR')
  }
  // With both set it gets past the check (and stops at the closed database port, so no server is needed).
  const dataDir = fresh(t)
  const keyFile = path.join(fresh(t), 'license-public.pem')
  writeFileSync(keyFile, (await generateLicenseKeyPair('ES256')).publicPem)
  const configured = await runCli(['serve'], { NODE_ENV: 'production', DATA_DIR: dataDir, CHANNELS_DIR: path.join(dataDir, 'none'), PORT: '0', LICENSE_PUBLIC_KEYS: keyFile, AUTH_SECRET: randomBytes(32).toString('hex'), DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' })
  t.match(configured.stderr, /connection refused/, 'keys configured: past the check, on to the database')
  t.notMatch(configured.stderr, /NODE_ENV=production/)
})

t.test('outside production the same start falls back to development keys', async (t) => {
  const dataDir = fresh(t)
  // A closed database port stops the start right after the keys, so the test needs no server.
  const result = await runCli(['serve'], { DATA_DIR: dataDir, CHANNELS_DIR: path.join(dataDir, 'none'), PORT: '0', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' })
  t.match(result.stderr, /connection refused/)
  t.same(readdirSync(path.join(dataDir, 'dev-keys')).sort(), ['auth-secret', 'license-private.pem', 'license-public.pem', 'spec-signing'], 'the spec-signing key directory too (docs/signing.md)')
})

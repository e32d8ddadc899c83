import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ConfigError, loadConfig } from '../src/config.js'
import { specSigningOf } from '../src/app.js'
import { generateEd25519Pair, initKeyDir, KEY_FILES } from '../src/keyset-tools.js'

t.test('signing is off by default, with a 7 day TTL', async (t) => {
  const config = loadConfig({})
  t.same(config.specSigningKeys, [])
  t.equal(config.specKeyset, null)
  t.equal(config.specSignatureTtlMs, 7 * 86_400_000)
  t.equal(specSigningOf(config), null)
})

t.test('SPEC_SIGNING_KEYS and SPEC_KEYSET go together', async (t) => {
  t.throws(() => loadConfig({ SPEC_SIGNING_KEYS: '/k.pem' }), ConfigError)
  t.throws(() => loadConfig({ SPEC_KEYSET: '/chain.json' }), ConfigError)
})

t.test('SPEC_SIGNATURE_TTL is a duration from 10s to 366d', async (t) => {
  t.equal(loadConfig({ SPEC_SIGNATURE_TTL: '1d' }).specSignatureTtlMs, 86_400_000)
  t.throws(() => loadConfig({ SPEC_SIGNATURE_TTL: '5s' }), ConfigError)
  t.throws(() => loadConfig({ SPEC_SIGNATURE_TTL: '400d' }), ConfigError)
  t.throws(() => loadConfig({ SPEC_SIGNATURE_TTL: 'soon' }), ConfigError)
})

t.test('a signing key that is not an online key of the newest keyset stops start-up, naming the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-config-signing-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  initKeyDir(dir)
  const stranger = path.join(dir, 'stranger.pem')
  writeFileSync(stranger, generateEd25519Pair().privatePem)
  const chain = path.join(dir, KEY_FILES.chain)
  t.ok(specSigningOf(loadConfig({ SPEC_SIGNING_KEYS: path.join(dir, KEY_FILES.online(1)), SPEC_KEYSET: chain })))
  t.throws(() => specSigningOf(loadConfig({ SPEC_SIGNING_KEYS: stranger, SPEC_KEYSET: chain })), { name: 'ConfigError', message: /stranger\.pem.*not an online key of keyset 1/ })
  t.throws(() => specSigningOf(loadConfig({ SPEC_SIGNING_KEYS: path.join(dir, KEY_FILES.rootPublic), SPEC_KEYSET: chain })), { name: 'ConfigError' }, 'a public key is no signing key')
  t.throws(() => specSigningOf(loadConfig({ SPEC_SIGNING_KEYS: stranger, SPEC_KEYSET: stranger })), { name: 'ConfigError', message: /SPEC_KEYSET/ })
})

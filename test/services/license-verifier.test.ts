import t from 'tap'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { exportJWK, importSPKI, SignJWT, importPKCS8 } from 'jose'
import { generateLicenseKeyPair, issueLicense } from '../../src/license-tools.js'
import { loadLicenseKeys, LicenseVerifier, MAX_CACHED_REFUSALS, MAX_TOKEN_BYTES, type LicenseAlgorithm } from '../../src/services/license-verifier.js'

function scratch (t: { teardown (fn: () => void): void }): (name: string, text: string) => string {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return (name, text) => {
    const file = path.join(dir, name)
    writeFileSync(file, text)
    return file
  }
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const claims = { sub: 'cluster-1', channels: ['stable'], exp: Math.floor(Date.now() / 1000) + 3600 }

async function verifierFor (t: { teardown (fn: () => void): void }, alg: LicenseAlgorithm = 'ES256') {
  const pair = await generateLicenseKeyPair(alg)
  const write = scratch(t)
  const keys = await loadLicenseKeys([write('pub.pem', pair.publicPem)])
  return { pair, keys, verifier: new LicenseVerifier(keys) }
}

for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
  t.test(`a ${alg} license verifies against its PEM public key`, async (t) => {
    const { pair, keys, verifier } = await verifierFor(t, alg)
    t.equal(keys[0]?.alg, alg)
    const token = await issueLicense(pair.privatePem, { sub: 'cluster-1', channels: ['stable'], expiresIn: 60, channel: 'stable' })
    const verified = await verifier.verify(token)
    t.equal(verified.sub, 'cluster-1')
    t.same(verified.channels, ['stable'])
    t.equal(verified.channel, 'stable')
  })
}

t.test('a JWKS file selects the key by kid', async (t) => {
  const write = scratch(t)
  const a = await generateLicenseKeyPair('ES256')
  const b = await generateLicenseKeyPair('EdDSA')
  const jwkA = { ...await exportJWK(await importSPKI(a.publicPem, 'ES256')), kid: 'key-a', use: 'sig' }
  const jwkB = { ...await exportJWK(await importSPKI(b.publicPem, 'EdDSA')), kid: 'key-b' }
  const keys = await loadLicenseKeys([write('jwks.json', JSON.stringify({ keys: [jwkA, jwkB] }))])
  t.same(keys.map((k) => [k.kid, k.alg]), [['key-a', 'ES256'], ['key-b', 'EdDSA']])
  const verifier = new LicenseVerifier(keys)
  t.equal((await verifier.verify(await issueLicense(b.privatePem, { sub: 'b', channels: ['*'], expiresIn: 60, kid: 'key-b' }))).sub, 'b')
  t.equal((await verifier.verify(await issueLicense(a.privatePem, { sub: 'a', channels: ['*'], expiresIn: 60, kid: 'key-a' }))).sub, 'a')
  await t.rejects(verifier.verify(await issueLicense(a.privatePem, { sub: 'a', channels: ['*'], expiresIn: 60, kid: 'key-b' })), { code: 'LICENSE_INVALID' }, 'kid of another key')
})

t.test('JWKS keys with use other than sig are skipped', async (t) => {
  const write = scratch(t)
  const a = await generateLicenseKeyPair('ES256')
  const b = await generateLicenseKeyPair('ES256')
  const keys = await loadLicenseKeys([write('jwks.json', JSON.stringify({ keys: [
    { ...await exportJWK(await importSPKI(a.publicPem, 'ES256')), kid: 'enc', use: 'enc' },
    { ...await exportJWK(await importSPKI(b.publicPem, 'ES256')), kid: 'sig' }
  ] }))])
  t.same(keys.map((k) => k.kid), ['sig'])
})

t.test('loading refuses private key material in a PEM file or a JWKS, naming the file', async (t) => {
  const write = scratch(t)
  const pair = await generateLicenseKeyPair('ES256')
  const privatePem = write('private.pem', pair.privatePem)
  await t.rejects(loadLicenseKeys([privatePem]), { message: `${privatePem}: contains a private key; give the server public keys only` })
  const jwk = await exportJWK(await importPKCS8(pair.privatePem, 'ES256', { extractable: true }))
  await t.rejects(loadLicenseKeys([write('jwks.json', JSON.stringify({ keys: [jwk] }))]), { message: /jwks\.json: key 0 contains private material/ })
})

t.test('loading refuses unreadable, non-key and malformed JWKS files with the file name', async (t) => {
  const write = scratch(t)
  await t.rejects(loadLicenseKeys(['/nonexistent/key.pem']), { message: 'license key file /nonexistent/key.pem cannot be read' })
  const junk = write('junk.pem', 'hello')
  await t.rejects(loadLicenseKeys([junk]), { message: `${junk}: not a PEM public key or JWKS file` })
  const badJson = write('bad.json', '{ not json')
  await t.rejects(loadLicenseKeys([badJson]), { message: `${badJson}: not valid JSON (expected a JWKS document)` })
  const empty = write('empty.json', '{"keys": []}')
  await t.rejects(loadLicenseKeys([empty]), { message: /needs a non-empty "keys" array/ })
})

t.test('loading refuses weak RSA keys, non-P-256 curves and a JWK alg that does not fit its key', async (t) => {
  const write = scratch(t)
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
  await t.rejects(loadLicenseKeys([write('rsa.pem', rsa)]), { message: /at least 2048 bits/ })
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }) as string
  await t.rejects(loadLicenseKeys([write('p384.pem', p384)]), { message: /P-256/ })
  const pair = await generateLicenseKeyPair('ES256')
  const jwk = { ...await exportJWK(await importSPKI(pair.publicPem, 'ES256')), alg: 'RS256' }
  await t.rejects(loadLicenseKeys([write('jwks.json', JSON.stringify({ keys: [jwk] }))]), { message: /declares alg RS256 but is a ES256 key/ })
})

t.test('alg none is refused', async (t) => {
  const { verifier } = await verifierFor(t)
  await t.rejects(verifier.verify(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`), { code: 'LICENSE_INVALID', message: /algorithm "none"/ })
})

t.test('an HS256 token signed with the public key PEM as secret is refused', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`
  const token = `${input}.${createHmac('sha256', pair.publicPem).update(input).digest('base64url')}`
  await t.rejects(verifier.verify(token), { code: 'LICENSE_INVALID', message: /algorithm "HS256"/ })
})

t.test('a token claiming another allowed algorithm than its key is refused', async (t) => {
  const { verifier } = await verifierFor(t, 'ES256')
  const other = await generateLicenseKeyPair('RS256')
  const token = await issueLicense(other.privatePem, { sub: 'x', channels: ['*'], expiresIn: 60 })
  await t.rejects(verifier.verify(token), { code: 'LICENSE_INVALID', message: /no license key accepts algorithm RS256/ })
})

t.test('a token signed by another key of the same type is refused', async (t) => {
  const { verifier } = await verifierFor(t, 'ES256')
  const other = await generateLicenseKeyPair('ES256')
  await t.rejects(verifier.verify(await issueLicense(other.privatePem, { sub: 'x', channels: ['*'], expiresIn: 60 })), { code: 'LICENSE_INVALID', message: /signature does not verify/ })
})

t.test('a tampered payload or signature is refused', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const token = await issueLicense(pair.privatePem, { sub: 'cluster-1', channels: ['stable'], expiresIn: 60 })
  const [h, p, s] = token.split('.') as [string, string, string]
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  await t.rejects(verifier.verify(`${h}.${b64({ ...payload, channels: ['*'] })}.${s}`), { code: 'LICENSE_INVALID' })
  const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1)
  await t.rejects(verifier.verify(`${h}.${p}.${flipped}`), { code: 'LICENSE_INVALID' })
})

t.test('malformed tokens are refused as LICENSE_INVALID', async (t) => {
  const { verifier } = await verifierFor(t)
  for (const bad of ['', 'abc', 'a.b', 'a.b.c', `${b64({ alg: 'ES256' })}.${b64(claims)}`, `${b64({ alg: 'ES256' })}.${b64(claims)}.sig.extra`, '!!!.###.$$$']) {
    await t.rejects(verifier.verify(bad), { code: 'LICENSE_INVALID' }, JSON.stringify(bad))
  }
})

t.test('a well-signed token without the required claims is refused', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const key = await importPKCS8(pair.privatePem, 'ES256')
  const noChannels = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('x').setExpirationTime('1h').sign(key)
  await t.rejects(verifier.verify(noChannels), { code: 'LICENSE_INVALID', message: /channels/ })
})

t.test('a token over the size limit is refused without being cached', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const big = await issueLicense(pair.privatePem, { sub: 'cluster-1', channels: ['*'], expiresIn: 60, extra: { pad: 'x'.repeat(MAX_TOKEN_BYTES) } })
  t.ok(big.length > MAX_TOKEN_BYTES)
  await t.rejects(verifier.verify(big), { code: 'LICENSE_INVALID', message: /larger than/ })
  t.equal(verifier.cachedTokens, 0)
})

t.test('verified and refused tokens are cached, each costing one verification', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const good = await issueLicense(pair.privatePem, { sub: 'cluster-1', channels: ['*'], expiresIn: 60 })
  const first = await verifier.verify(good)
  t.equal(await verifier.verify(good), first, 'same claims object from the cache')
  await t.rejects(verifier.verify('a.b.c'), { code: 'LICENSE_INVALID' })
  t.throws(() => verifier.cached('a.b.c'), { code: 'LICENSE_INVALID' }, 'the refusal is cached')
  t.equal(verifier.cachedTokens, 1, 'verified licenses only')
  t.equal(verifier.cachedRefusals, 1)
})

t.test('a forged token reusing a license\'s signature is refused, and the license stays cached', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const good = await issueLicense(pair.privatePem, { sub: 'cluster-1', channels: ['stable'], expiresIn: 60 })
  const claimsOfGood = await verifier.verify(good)
  const [h, p, s] = good.split('.') as [string, string, string]
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  const forged = `${h}.${b64({ ...payload, channels: ['*'] })}.${s}`
  t.equal(verifier.cached(forged), undefined, 'same signature, other payload: not a cache hit')
  await t.rejects(verifier.verify(forged), { code: 'LICENSE_INVALID', message: /signature does not verify/ })
  t.equal(verifier.cached(good), claimsOfGood, 'the license is still served from the cache')
  t.throws(() => verifier.cached(forged), { code: 'LICENSE_INVALID' }, 'the forgery\'s refusal is cached apart')
  t.equal(verifier.cachedTokens, 1)
  // Refusals are keyed by the whole token's hash: two with one signature are both kept.
  await t.rejects(verifier.verify('x.y.z'), { code: 'LICENSE_INVALID' })
  await t.rejects(verifier.verify('x.w.z'), { code: 'LICENSE_INVALID' })
  t.throws(() => verifier.cached('x.w.z'), { code: 'LICENSE_INVALID' }, 'cached refusal thrown')
  t.throws(() => verifier.cached('x.y.z'), { code: 'LICENSE_INVALID' })
})

t.test('200,000 made-up tokens evict no verified license, and the refusal cache stays at its bound', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const good = await issueLicense(pair.privatePem, { sub: 'cluster-1', channels: ['stable'], expiresIn: 60 })
  const claimsOfGood = await verifier.verify(good)
  // Well-formed ES256 headers with an unknown kid: refused without a signature check, so the
  // flood is quick; what matters here is how many refusals there were, not what each cost.
  const header = b64({ alg: 'ES256', kid: 'made-up' })
  const signature = 'A'.repeat(86)
  let refused = 0
  for (let i = 0; i < 200_000; i++) {
    try {
      await verifier.verify(`${header}.${b64({ n: i })}.${signature}`)
    } catch (error) {
      if ((error as { code?: string }).code === 'LICENSE_INVALID') refused++
    }
  }
  t.equal(refused, 200_000, 'every made-up token refused')
  t.equal(verifier.cached(good), claimsOfGood, 'the license is still cached: no re-verification, same rate window')
  t.equal(verifier.cachedTokens, 1)
  t.equal(verifier.cachedRefusals, MAX_CACHED_REFUSALS, 'the refusal cache is full, and not beyond')
  t.throws(() => verifier.cached(`${header}.${b64({ n: 199_999 })}.${signature}`), { code: 'LICENSE_INVALID' }, 'a recent refusal is cached')
  t.equal(verifier.cached(`${header}.${b64({ n: 0 })}.${signature}`), undefined, 'the oldest refusal was dropped')
})

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Other spellings of a license that jose decodes to the same bytes. */
export function respellings (token: string): Record<string, string> {
  const [h, p, s] = token.split('.') as [string, string, string]
  const last = s.at(-1) ?? 'A'
  // An ES256 signature is 64 bytes: 86 characters, the last one with 4 spare bits.
  const spareBit = s.slice(0, -1) + BASE64URL[BASE64URL.indexOf(last) ^ 1]
  return {
    'spare bits in the signature': `${h}.${p}.${spareBit}`,
    'padding on the signature': `${h}.${p}.${s}==`,
    'a space inside the signature': `${h}.${p}.${s.slice(0, 20)} ${s.slice(20)}`,
    'a tab inside the payload': `${h}.${p.slice(0, 10)}\t${p.slice(10)}.${s}`
  }
}

t.test('other spellings of a license\'s base64url are refused; the canonical one verifies', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const good = await issueLicense(pair.privatePem, { sub: 'cluster-1', channels: ['stable'], expiresIn: 60 })
  for (const [name, token] of Object.entries(respellings(good))) {
    await t.rejects(verifier.verify(token), { code: 'LICENSE_INVALID', message: /canonical base64url/ }, name)
  }
  t.equal((await verifier.verify(good)).sub, 'cluster-1')
  t.equal(verifier.cachedTokens, 1, 'one license, one cache entry')
})

t.test('a kid with path characters is just an unknown kid', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const token = await issueLicense(pair.privatePem, { sub: 'x', channels: ['*'], expiresIn: 60, kid: '../../etc/passwd' })
  await t.rejects(verifier.verify(token), { code: 'LICENSE_INVALID', message: /unknown key id/ })
})

t.test('the verifier does not judge time: expiry is the domain\'s call on every request', async (t) => {
  const { pair, verifier } = await verifierFor(t)
  const expired = await issueLicense(pair.privatePem, { sub: 'x', channels: ['*'], expiresIn: 60 }, Math.floor(Date.now() / 1000) - 3600)
  t.equal((await verifier.verify(expired)).sub, 'x')
})

t.test('a refusal quotes at most a short prefix of a made-up algorithm name (refusals are cached)', async (t) => {
  const { verifier } = await verifierFor(t)
  const alg = 'X'.repeat(4000)
  await t.rejects(verifier.verify(`${b64({ alg })}.${b64(claims)}.AAAA`), { code: 'LICENSE_INVALID', message: /^license algorithm "X{16}\.\.\." is not accepted/ })
})

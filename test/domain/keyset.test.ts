import t from 'tap'
import { KeysetError, anchorFromRoot, canonicalBytes, followKeysetChain, jwkThumbprint, keysetKeyOf, parseKeyset, parseKeysetChain, parseTrustRoot, signKeyset, type Keyset } from '../../src/domain/keyset.js'
import { generateEd25519Pair, initKeys, rotateKeyset } from '../../src/keyset-tools.js'
import { calculateJwkThumbprint } from 'jose'

function thrownCheck (fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    return error instanceof KeysetError ? error.check : `not a KeysetError: ${String(error)}`
  }
  return 'no error'
}

const NOW = Date.parse('2026-12-01T12:00:00Z')

t.test('canonical bytes are RFC 8785: sorted members, no whitespace', async (t) => {
  t.equal(canonicalBytes({ b: 1, a: [true, 'x'], c: { z: null, y: 1.5 } }).toString(), '{"a":[true,"x"],"b":1,"c":{"y":1.5,"z":null}}')
})

t.test('a kid is the RFC 7638 thumbprint jose computes', async (t) => {
  const pair = generateEd25519Pair()
  const jwk = keysetKeyOf(pair.publicKey).publicKey
  t.equal(jwkThumbprint(jwk), await calculateJwkThumbprint(jwk, 'sha256'))
  t.equal(pair.kid, jwkThumbprint(jwk))
})

t.test('keys init gives keyset 1, signed by its root, that a root anchor follows', async (t) => {
  const { root, keyset } = initKeys({ nowMs: NOW })
  t.equal(keyset.signed.version, 1)
  t.equal(keyset.signatures.length, 1)
  const result = followKeysetChain([keyset], anchorFromRoot(keysetKeyOf(root.publicKey)), NOW)
  t.ok(result.ok)
  if (result.ok) t.equal(result.keyset, keyset)
})

t.test('a kid that is not its key\'s thumbprint is refused as malformed', async (t) => {
  const { keyset } = initKeys({ nowMs: NOW })
  const forged = structuredClone(keyset)
  forged.signed.keys[0]!.kid = forged.signed.roots[0]!.kid
  t.equal(thrownCheck(() => parseKeyset(forged)), 'keyset-malformed')
})

t.test('a chain parses from {keysets}, a list or one keyset', async (t) => {
  const { keyset } = initKeys({ nowMs: NOW })
  t.equal(parseKeysetChain({ keysets: [keyset] }).length, 1)
  t.equal(parseKeysetChain([keyset]).length, 1)
  t.equal(parseKeysetChain(keyset).length, 1)
  t.equal(thrownCheck(() => parseKeysetChain({ keysets: [] })), 'keyset-malformed')
})

t.test('a trust root may be a PEM public key, a JWK, a keyset or a chain', async (t) => {
  const { root, keyset } = initKeys({ nowMs: NOW })
  const kid = root.kid
  t.equal(parseTrustRoot(root.publicPem).roots[0]!.kid, kid)
  t.equal(parseTrustRoot(JSON.stringify(keysetKeyOf(root.publicKey).publicKey)).roots[0]!.kid, kid)
  const fromKeyset = parseTrustRoot(JSON.stringify(keyset))
  t.equal(fromKeyset.version, 1)
  t.equal(fromKeyset.keyset?.signed.version, 1)
  const next = rotateKeyset(keyset, [root.privateKey], { add: [generateEd25519Pair().publicKey], nowMs: NOW })
  t.equal(parseTrustRoot(JSON.stringify({ keysets: [keyset, next] })).version, 2)
  t.equal(thrownCheck(() => parseTrustRoot('not a key')), 'keyset-malformed')
})

t.test('an expired newest keyset is refused; an expired intermediate one still hands trust on', async (t) => {
  const { root, keyset } = initKeys({ nowMs: NOW - 400 * 86_400_000 })
  const anchor = anchorFromRoot(keysetKeyOf(root.publicKey))
  const alone = followKeysetChain([keyset], anchor, NOW)
  t.same(alone.ok ? 'ok' : alone.check, 'keyset-expired')
  const next = rotateKeyset(keyset, [root.privateKey], { nowMs: NOW })
  t.ok(followKeysetChain([keyset, next], anchor, NOW).ok)
})

t.test('a gap in the chain is refused', async (t) => {
  const { root, keyset } = initKeys({ nowMs: NOW })
  const v2 = rotateKeyset(keyset, [root.privateKey], { nowMs: NOW })
  const v3 = rotateKeyset(v2, [root.privateKey], { nowMs: NOW })
  const result = followKeysetChain([keyset, v3], anchorFromRoot(keysetKeyOf(root.publicKey)), NOW)
  t.same(result.ok ? 'ok' : result.check, 'keyset-chain-broken')
})

t.test('a keyset signed by its root but not by the trusted one is refused', async (t) => {
  const { keyset } = initKeys({ nowMs: NOW })
  const other = generateEd25519Pair()
  const result = followKeysetChain([keyset], anchorFromRoot(keysetKeyOf(other.publicKey)), NOW)
  t.same(result.ok ? 'ok' : result.check, 'keyset-not-signed-by-root')
})

t.test('a keyset whose signed part was edited after signing is refused', async (t) => {
  const { root, keyset } = initKeys({ nowMs: NOW })
  const edited: Keyset = { ...keyset, signed: { ...keyset.signed, expires: '2099-01-01T00:00:00Z' } }
  const result = followKeysetChain([edited], anchorFromRoot(keysetKeyOf(root.publicKey)), NOW)
  t.same(result.ok ? 'ok' : result.check, 'keyset-not-signed-by-root')
})

t.test('a keyset signed by the old root alone cannot name a new root it never proved', async (t) => {
  const { root, keyset } = initKeys({ nowMs: NOW })
  const newRoot = generateEd25519Pair()
  const v2 = signKeyset({ ...keyset.signed, version: 2, roots: [keysetKeyOf(newRoot.publicKey)] }, [root.privateKey])
  const result = followKeysetChain([keyset, v2], anchorFromRoot(keysetKeyOf(root.publicKey)), NOW)
  t.same(result.ok ? 'ok' : result.check, 'keyset-not-signed-by-root')
})

t.test('after a root rotation, the new root alone is a trust root: the chain is followed from the first keyset it signed', async (t) => {
  const { root, keyset } = initKeys({ nowMs: NOW })
  const newRoot = generateEd25519Pair()
  const v2 = rotateKeyset(keyset, [root.privateKey], { newRoot: newRoot.privateKey, nowMs: NOW })
  const v3 = rotateKeyset(v2, [newRoot.privateKey], { add: [generateEd25519Pair().publicKey], nowMs: NOW })
  const fromNew = followKeysetChain([keyset, v2, v3], anchorFromRoot(keysetKeyOf(newRoot.publicKey)), NOW)
  t.same(fromNew.ok ? fromNew.keyset.signed.version : fromNew.check, 3, 'the new root follows 2 -> 3')
  const fromOld = followKeysetChain([keyset, v2, v3], anchorFromRoot(keysetKeyOf(root.publicKey)), NOW)
  t.same(fromOld.ok ? fromOld.keyset.signed.version : fromOld.check, 3, 'the old root still follows 1 -> 2 -> 3')
  const stranger = generateEd25519Pair()
  const foreign = followKeysetChain([keyset, v2, v3], anchorFromRoot(keysetKeyOf(stranger.publicKey)), NOW)
  t.same(foreign.ok ? 'ok' : foreign.check, 'keyset-not-signed-by-root', 'a root that signed nothing in the chain is trusted with nothing')
})

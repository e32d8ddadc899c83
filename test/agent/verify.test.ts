/**
 * One case per attack on a signed spec answer, each with the exact check that refuses it.
 * Real keys, real signatures: nothing here is a stand-in.
 */
import t from 'tap'
import { CompactSign } from 'jose'
import { anchorFromKeyset, anchorFromRoot, keysetKeyOf, signKeyset, type Keyset } from '../../src/domain/keyset.js'
import { generateEd25519Pair, initKeys, rotateKeyset } from '../../src/keyset-tools.js'
import { SpecSigner, signStatement } from '../../src/services/spec-signer.js'
import { specStatement } from '../../src/domain/spec-statement.js'
import { verifyAnswer, type AnswerWithChain, type VerifyResult } from '../../src/agent/verify.js'

const NOW = Date.parse('2026-12-01T12:00:00Z')
const body = '{"channel":"stable","chart":{"name":"acme","url":"https://charts.example.com","version":"0.4.0"},"metadata":{"channel":"stable","version":"1.2.0"},"values":{},"version":"1.2.0"}'
const subject = { channel: 'stable', version: '1.2.0', revision: 7 }

function setup () {
  const { root, online, keyset } = initKeys({ nowMs: NOW })
  const signer = new SpecSigner({ kid: online.kid, privateKey: online.privateKey }, 7 * 86_400_000, () => NOW)
  const trust = anchorFromRoot(keysetKeyOf(root.publicKey))
  return { root, online, keyset, signer, trust }
}

async function check (input: Partial<AnswerWithChain> & Pick<AnswerWithChain, 'chain' | 'trust' | 'signature'>): Promise<string> {
  const result: VerifyResult = await verifyAnswer({ body, channel: 'stable', highestRevision: null, nowMs: NOW, ...input })
  return result.ok ? 'ok' : result.check
}

t.test('an untouched answer verifies and yields its statement', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, subject)
  const result = await verifyAnswer({ body, signature: jws, chain: [keyset], trust, channel: 'stable', highestRevision: 7, nowMs: NOW })
  t.ok(result.ok)
  if (result.ok) t.same(result.statement, { ...subject, sha256: result.statement.sha256, expires: Math.floor((NOW + 7 * 86_400_000) / 1000) })
})

t.test('body tampered: body-hash', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, subject)
  t.equal(await check({ body: body.replace('0.4.0', '6.6.6'), signature: jws, chain: [keyset], trust }), 'body-hash')
})

t.test('signature tampered: signature-invalid', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, subject)
  const [h, p, s] = jws.split('.') as [string, string, string]
  const flipped = Buffer.from(s, 'base64url')
  flipped[0] = flipped[0]! ^ 1
  t.equal(await check({ signature: `${h}.${p}.${flipped.toString('base64url')}`, chain: [keyset], trust }), 'signature-invalid')
})

t.test('payload swapped under the same signature: signature-invalid', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, subject)
  const [h, , s] = jws.split('.') as [string, string, string]
  const forged = Buffer.from(JSON.stringify({ ...specStatement(body, subject, 9_999_999_999), revision: 99 })).toString('base64url')
  t.equal(await check({ signature: `${h}.${forged}.${s}`, chain: [keyset], trust }), 'signature-invalid')
})

t.test('unknown kid: unknown-kid', async (t) => {
  const { keyset, online, trust } = setup()
  const jws = await new CompactSign(Buffer.from(JSON.stringify(specStatement(body, subject, NOW / 1000 + 3600))))
    .setProtectedHeader({ alg: 'EdDSA', kid: 'no-such-key', typ: 'chartcast-spec+jws' }).sign(online.privateKey)
  t.equal(await check({ signature: jws, chain: [keyset], trust }), 'unknown-kid')
})

t.test('a key not in the keyset, under its own kid: unknown-kid', async (t) => {
  const { keyset, trust } = setup()
  const stranger = generateEd25519Pair()
  const jws = await signStatement(specStatement(body, subject, NOW / 1000 + 3600), { kid: stranger.kid, privateKey: stranger.privateKey })
  t.equal(await check({ signature: jws, chain: [keyset], trust }), 'unknown-kid')
})

t.test('a key not in the keyset, claiming the kid of one that is: signature-invalid', async (t) => {
  const { keyset, online, trust } = setup()
  const stranger = generateEd25519Pair()
  const jws = await signStatement(specStatement(body, subject, NOW / 1000 + 3600), { kid: online.kid, privateKey: stranger.privateKey })
  t.equal(await check({ signature: jws, chain: [keyset], trust }), 'signature-invalid')
})

t.test('the root key signing a statement (roots sign keysets only): unknown-kid', async (t) => {
  const { keyset, root, trust } = setup()
  const jws = await signStatement(specStatement(body, subject, NOW / 1000 + 3600), { kid: root.kid, privateKey: root.privateKey })
  t.equal(await check({ signature: jws, chain: [keyset], trust }), 'unknown-kid')
})

t.test('an online key dropped by a rotation no longer verifies: unknown-kid', async (t) => {
  const { keyset, root, online, signer, trust } = setup()
  const next = generateEd25519Pair()
  const v2 = rotateKeyset(keyset, [root.privateKey], { add: [next.publicKey], remove: [online.kid], nowMs: NOW })
  const { jws } = await signer.sign(body, subject)
  t.equal(await check({ signature: jws, chain: [keyset, v2], trust }), 'unknown-kid')
})

t.test('expired signature: signature-expired', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, subject, 60_000)
  t.equal(await check({ signature: jws, chain: [keyset], trust, nowMs: NOW + 60_000 }), 'signature-expired')
  t.equal(await check({ signature: jws, chain: [keyset], trust, nowMs: NOW + 59_000 }), 'ok')
})

t.test('keyset not signed by the root: keyset-not-signed-by-root', async (t) => {
  const { online, trust } = setup()
  const impostorRoot = generateEd25519Pair()
  // An attacker's keyset naming the real online key set, signed by its own root.
  const forged = signKeyset({ version: 1, expires: '2099-01-01T00:00:00Z', roots: [keysetKeyOf(impostorRoot.publicKey)], keys: [keysetKeyOf(online.publicKey), keysetKeyOf(impostorRoot.publicKey)] }, [impostorRoot.privateKey])
  const jws = await signStatement(specStatement(body, subject, NOW / 1000 + 3600), { kid: impostorRoot.kid, privateKey: impostorRoot.privateKey })
  t.equal(await check({ signature: jws, chain: [forged], trust }), 'keyset-not-signed-by-root')
})

t.test('replayed older revision: revision-rollback; the same revision again is fine', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, subject)
  t.equal(await check({ signature: jws, chain: [keyset], trust, highestRevision: 8 }), 'revision-rollback')
  t.equal(await check({ signature: jws, chain: [keyset], trust, highestRevision: 7 }), 'ok')
})

t.test('spec for another channel: channel', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, subject)
  t.equal(await check({ signature: jws, chain: [keyset], trust, channel: 'beta' }), 'channel')
})

t.test('signed version differs from the body or the pinned version: version', async (t) => {
  const { keyset, signer, trust } = setup()
  const { jws } = await signer.sign(body, { ...subject, version: '1.1.0' })
  t.equal(await check({ signature: jws, chain: [keyset], trust }), 'version')
  const { jws: good } = await signer.sign(body, subject)
  t.equal(await check({ signature: good, chain: [keyset], trust, version: '1.1.0' }), 'version')
})

t.test('no signature: signature-missing; garbage: signature-malformed', async (t) => {
  const { keyset, trust } = setup()
  t.equal(await check({ signature: undefined, chain: [keyset], trust }), 'signature-missing')
  t.equal(await check({ signature: 'not.a.jws!', chain: [keyset], trust }), 'signature-malformed')
})

t.test('root rotation followed correctly: keyset 2 signed by old and new root, keyset 3 by the new root alone', async (t) => {
  const { keyset, root, online, trust } = setup()
  const newRoot = generateEd25519Pair()
  const v2 = rotateKeyset(keyset, [root.privateKey], { newRoot: newRoot.privateKey, nowMs: NOW })
  t.equal(v2.signatures.length, 2)
  const newOnline = generateEd25519Pair()
  const v3 = rotateKeyset(v2, [newRoot.privateKey], { add: [newOnline.publicKey], remove: [online.kid], nowMs: NOW })
  const jws = await new SpecSigner({ kid: newOnline.kid, privateKey: newOnline.privateKey }, 3_600_000, () => NOW).sign(body, subject)
  const result = await verifyAnswer({ body, signature: jws.jws, chain: [keyset, v2, v3], trust, channel: 'stable', highestRevision: null, nowMs: NOW })
  t.ok(result.ok)
  if (result.ok) t.equal(result.keyset.signed.version, 3)
  // A shipped keyset 1 as trust root follows the same chain.
  t.equal(await check({ signature: jws.jws, chain: [keyset, v2, v3], trust: anchorFromKeyset(keyset) }), 'ok')
})

t.test('rotation signed only by the new root: keyset-not-signed-by-root', async (t) => {
  const { keyset, trust } = setup()
  const newRoot = generateEd25519Pair()
  const attackerOnline = generateEd25519Pair()
  const v2: Keyset = signKeyset({ version: 2, expires: '2099-01-01T00:00:00Z', roots: [keysetKeyOf(newRoot.publicKey)], keys: [keysetKeyOf(attackerOnline.publicKey)] }, [newRoot.privateKey])
  const jws = await signStatement(specStatement(body, subject, NOW / 1000 + 3600), { kid: attackerOnline.kid, privateKey: attackerOnline.privateKey })
  t.equal(await check({ signature: jws, chain: [keyset, v2], trust }), 'keyset-not-signed-by-root')
})

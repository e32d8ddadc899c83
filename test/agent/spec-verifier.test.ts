/** The agent's SpecVerifier: when it fetches /keys, how trust moves, and the revision store. */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { anchorFromRoot, keysetKeyOf, type Keyset } from '../../src/domain/keyset.js'
import { generateEd25519Pair, initKeys, rotateKeyset } from '../../src/keyset-tools.js'
import { SpecSigner } from '../../src/services/spec-signer.js'
import { SpecVerifier } from '../../src/agent/spec-verifier.js'
import { FileRevisionStore } from '../../src/agent/state.js'

const body = '{"channel":"stable","version":"1.0.0"}'
const subject = { channel: 'stable', version: '1.0.0', revision: 3 }
const expect = { channel: 'stable', highestRevision: null }

/** A stand-in for GET /keys: serves `chain.keysets`, counts requests. */
function keysServer (chain: { keysets: Keyset[] }) {
  const served = { requests: 0, fail: false }
  const fetch = async (url: string): Promise<Response> => {
    served.requests++
    if (served.fail) throw new Error('connect ECONNREFUSED')
    if (!url.endsWith('/keys')) return new Response('', { status: 404 })
    return new Response(JSON.stringify(chain), { status: 200 })
  }
  return { served, fetch }
}

t.test('fetches the chain once and reuses the trusted keyset', async (t) => {
  const { root, online, keyset } = initKeys()
  const { served, fetch } = keysServer({ keysets: [keyset] })
  const verifier = new SpecVerifier({ trust: anchorFromRoot(keysetKeyOf(root.publicKey)), server: 'http://chartcast.test/base', fetch })
  const { jws } = await new SpecSigner(online).sign(body, subject)
  t.ok((await verifier.verify({ body, signature: jws }, expect)).ok)
  t.ok((await verifier.verify({ body, signature: jws }, expect)).ok)
  t.equal(served.requests, 1)
})

t.test('an unknown kid re-fetches /keys once: a new online key is picked up', async (t) => {
  const { root, online, keyset } = initKeys()
  const chain = { keysets: [keyset] }
  const { served, fetch } = keysServer(chain)
  const verifier = new SpecVerifier({ trust: anchorFromRoot(keysetKeyOf(root.publicKey)), server: 'http://chartcast.test', fetch })
  t.ok((await verifier.verify({ body, signature: (await new SpecSigner(online).sign(body, subject)).jws }, expect)).ok)
  const next = generateEd25519Pair()
  chain.keysets = [keyset, rotateKeyset(keyset, [root.privateKey], { add: [next.publicKey], remove: [online.kid] })]
  const result = await verifier.verify({ body, signature: (await new SpecSigner(next).sign(body, subject)).jws }, expect)
  t.ok(result.ok)
  t.equal(served.requests, 2)
  t.equal(verifier.keyset?.signed.version, 2)
})

t.test('a served chain cannot take trust back: keyset 1 alone after keyset 2 leaves keyset 2 trusted', async (t) => {
  const { root, online, keyset } = initKeys()
  const next = generateEd25519Pair()
  const v2 = rotateKeyset(keyset, [root.privateKey], { add: [next.publicKey], remove: [online.kid] })
  const chain = { keysets: [keyset, v2] }
  const { fetch } = keysServer(chain)
  const verifier = new SpecVerifier({ trust: anchorFromRoot(keysetKeyOf(root.publicKey)), server: 'http://chartcast.test', fetch })
  t.ok((await verifier.verify({ body, signature: (await new SpecSigner(next).sign(body, subject)).jws }, expect)).ok)
  chain.keysets = [keyset]
  const retired = await verifier.verify({ body, signature: (await new SpecSigner(online).sign(body, subject)).jws }, expect)
  t.same(retired.ok ? 'ok' : retired.check, 'unknown-kid', 'the key keyset 2 dropped stays dropped')
  t.equal(verifier.keyset?.signed.version, 2)
})

t.test('/keys unreachable: keyset-unavailable', async (t) => {
  const { root, online } = initKeys()
  const { served, fetch } = keysServer({ keysets: [] })
  served.fail = true
  const verifier = new SpecVerifier({ trust: anchorFromRoot(keysetKeyOf(root.publicKey)), server: 'http://chartcast.test', fetch })
  const result = await verifier.verify({ body, signature: (await new SpecSigner(online).sign(body, subject)).jws }, expect)
  t.same(result.ok ? 'ok' : result.check, 'keyset-unavailable')
})

t.test('FileRevisionStore keeps the highest revision per channel; it never goes down', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-revisions-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const store = new FileRevisionStore(path.join(dir, 'state'))
  t.equal(await store.loadHighestRevision('stable'), null)
  await store.saveHighestRevision('stable', 5)
  await store.saveHighestRevision('stable', 3)
  await store.saveHighestRevision('beta', 1)
  t.equal(await new FileRevisionStore(path.join(dir, 'state')).loadHighestRevision('stable'), 5)
  t.equal(await store.loadHighestRevision('beta'), 1)
})

/** LicenseRegistry: revocation reloads that finish out of order never install the older read. */
import t from 'tap'
import { generateLicenseKeyPair, issueLicense } from '../../src/license-tools.js'
import { loadLicenseKeys, LicenseVerifier } from '../../src/services/license-verifier.js'
import { LicenseRegistry } from '../../src/services/license-registry.js'
import type { Store } from '../../src/db/store.js'
import type { RevocationRow } from '../../src/db/schema.js'

type RevocationSource = Pick<Store, 'listEffectiveRevocations'>

/** A stand-in store whose reads each wait until the test answers them, in any order. */
function heldReads (): { source: RevocationSource, answer: (index: number, rows: RevocationRow[]) => void } {
  const waiting: Array<(rows: RevocationRow[]) => void> = []
  return {
    source: { listEffectiveRevocations: async () => await new Promise<RevocationRow[]>((resolve) => { waiting.push(resolve) }) },
    answer: (index, rows) => { waiting[index]!(rows) }
  }
}

const revocationOf = (sub: string, at: Date): RevocationRow => ({ id: 1, jti: null, sub, reason: 'contract ended', actor: 'alice-admin', at })

t.test('a reload that started earlier and finishes later does not undo a newer one', async (t) => {
  const pair = await generateLicenseKeyPair('ES256')
  const dir = t.testdir({ 'pub.pem': pair.publicPem })
  const verifier = new LicenseVerifier(await loadLicenseKeys([`${dir}/pub.pem`]))
  const issuedAt = Math.floor(Date.now() / 1000) - 60
  const license = await issueLicense(pair.privatePem, { sub: 'cluster-7', channels: ['stable'], expiresIn: 3600 }, issuedAt)
  const reads = heldReads()
  const registry = new LicenseRegistry(verifier, { issuer: null, audience: null }, reads.source as Store)
  await t.resolves(registry.authenticate(license), 'valid before any revocation')

  // The first reload reads while the revocation is in force; the lift commits; the second
  // reload reads the lifted state and finishes first.
  const older = registry.loadRevocations()
  const newer = registry.loadRevocations()
  reads.answer(1, [])
  await newer
  reads.answer(0, [revocationOf('cluster-7', new Date((issuedAt + 1) * 1000))])
  await older
  await t.resolves(registry.authenticate(license), 'the lift read by the newer reload stays in force')

  // In order, the newest read wins as always.
  const third = registry.loadRevocations()
  reads.answer(2, [revocationOf('cluster-7', new Date((issuedAt + 1) * 1000))])
  await third
  await t.rejects(registry.authenticate(license), { code: 'LICENSE_REVOKED' }, 'a later reload installs a new revocation')
})

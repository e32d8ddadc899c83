/** bench/signing-setup.ts: the bench app it configures signs; an unsigned one fails its check. */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { generateLicenseKeyPair } from '../../src/license-tools.js'
import { benchSigning } from '../../bench/signing-setup.js'
import { mintLicenses, seed, startBenchApp } from '../../bench/lib.js'

t.test('startBenchApp with benchSigning() serves verifiable signatures; without it the check refuses', async (t) => {
  const keyPair = await generateLicenseKeyPair('ES256')
  const authSecret = randomBytes(32).toString('hex')
  const signing = benchSigning()
  t.teardown(() => { signing.close() })
  const signed = await startBenchApp({ databaseUrl: null, keyPair, authSecret, specSigning: signing.specSigning })
  t.teardown(async () => { await signed.close() })
  await seed(signed, 1, 2)
  const [license] = await mintLicenses(keyPair, 1, 1)
  await t.resolves(signing.assertSigned(await signed.listen(), license!.token, license!.channel), 'a signed answer verifies')

  const plain = await startBenchApp({ databaseUrl: null, keyPair, authSecret })
  t.teardown(async () => { await plain.close() })
  await seed(plain, 1, 2)
  await t.rejects(signing.assertSigned(await plain.listen(), license!.token, license!.channel), /signature-missing/)
})

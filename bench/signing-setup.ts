/**
 * Signing on for the bench: a throwaway key directory made the way `chartcast keys init` makes
 * one, the signing material to hand to startBenchApp({ specSigning }), the SPEC_* environment for
 * a server started as a process, and a check that an answer really carries a valid signature (so
 * a "signing on" phase cannot silently measure an unsigned server).
 *
 *   const signing = benchSigning()
 *   const signed = await startBenchApp({ databaseUrl, keyPair, authSecret, specSigning: signing.specSigning })
 *   await signing.assertSigned(await signed.listen(), license, channel)
 *   ... measure phase 2 against both apps, interleaved ...
 *   signing.close()
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseTrustRoot, type TrustAnchor } from '../src/domain/keyset.js'
import { SIGNATURE_HEADER } from '../src/domain/spec-statement.js'
import { initKeyDir, KEY_FILES } from '../src/keyset-tools.js'
import { loadSpecSigning, type SpecSigning } from '../src/services/spec-signer.js'
import { verifyAnswer } from '../src/agent/verify.js'

export interface BenchSigning {
  /** For startBenchApp({ specSigning }) (AppOptions.specSigning). */
  specSigning: SpecSigning
  /** SPEC_SIGNING_KEYS and SPEC_KEYSET, for a server started as a process. */
  env: Record<string, string>
  trust: TrustAnchor
  /** One spec pull that must carry a signature verifying with the chain and the trust root. */
  assertSigned (url: string, license: string, channel: string): Promise<void>
  close (): void
}

export function benchSigning (): BenchSigning {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-bench-keys-'))
  initKeyDir(dir)
  const env = { SPEC_SIGNING_KEYS: path.join(dir, KEY_FILES.online(1)), SPEC_KEYSET: path.join(dir, KEY_FILES.chain) }
  const specSigning = loadSpecSigning([env.SPEC_SIGNING_KEYS], env.SPEC_KEYSET)
  const trust = parseTrustRoot(readFileSync(path.join(dir, KEY_FILES.rootPublic), 'utf8'))
  return {
    specSigning,
    env,
    trust,
    assertSigned: async (url, license, channel) => {
      const res = await fetch(`${url}/channels/${channel}/spec`, { headers: { authorization: `Bearer ${license}` } })
      const body = await res.text()
      const result = await verifyAnswer({ body, signature: res.headers.get(SIGNATURE_HEADER), chain: specSigning.chain, trust, channel, highestRevision: null, nowMs: Date.now() })
      if (!result.ok) throw new Error(`the signing-on bench app answered without a valid signature (${result.check}: ${result.detail})`)
    },
    close: () => { rmSync(dir, { recursive: true, force: true }) }
  }
}

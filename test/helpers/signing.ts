/**
 * Signing material for tests, made by the same code as `chartcast keys init` (real Ed25519 keys
 * in a temporary key directory): the env that turns signing on, and the trust root.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseTrustRoot, type Keyset, type TrustAnchor } from '../../src/domain/keyset.js'
import { initKeyDir, KEY_FILES, readChainFile } from '../../src/keyset-tools.js'

export interface TestSigning {
  dir: string
  /** SPEC_SIGNING_KEYS and SPEC_KEYSET (plus extra). */
  env: Record<string, string>
  chain: Keyset[]
  trust: TrustAnchor
  rootPublicFile: string
}

export function testSigning (t: { teardown (fn: () => unknown): void }, extraEnv: Record<string, string> = {}): TestSigning {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-keys-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  initKeyDir(dir)
  const rootPublicFile = path.join(dir, KEY_FILES.rootPublic)
  return {
    dir,
    env: { SPEC_SIGNING_KEYS: path.join(dir, KEY_FILES.online(1)), SPEC_KEYSET: path.join(dir, KEY_FILES.chain), ...extraEnv },
    chain: readChainFile(path.join(dir, KEY_FILES.chain)),
    trust: parseTrustRoot(readFileSync(rootPublicFile, 'utf8')),
    rootPublicFile
  }
}

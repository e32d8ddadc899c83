/** Keys and signed air-gap bundles for tests, made with the real signer and bundle writer. */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BUNDLE_FILES, BUNDLE_FORMAT, parseBundle, writeBundle, type BundleFiles } from '../../src/bundle/format.js'
import { canonicalJson } from '../../src/domain/values.js'
import type { Keyset } from '../../src/domain/keyset.js'
import { SpecSigner, onlineKeyFromPem } from '../../src/services/spec-signer.js'
import { initKeys } from '../../src/keyset-tools.js'
import { readFile } from 'node:fs/promises'

export interface TestKeys {
  dir: string
  /** Files: the root public key (what a site is given), the online private key, the chain. */
  rootPub: string
  onlineKey: string
  keysetFile: string
  chain: Keyset[]
  onlinePem: string
}

export async function makeTestKeys (nowMs = Date.now()): Promise<TestKeys> {
  const dir = await mkdtemp(join(tmpdir(), 'chartcast-keys-'))
  const { root, online, keyset } = initKeys({ nowMs })
  const keys: TestKeys = {
    dir,
    rootPub: join(dir, 'root.pub'),
    onlineKey: join(dir, 'online.pem'),
    keysetFile: join(dir, 'keyset.json'),
    chain: [keyset],
    onlinePem: online.privatePem
  }
  await writeFile(keys.rootPub, root.publicPem)
  await writeFile(keys.onlineKey, online.privatePem, { mode: 0o600 })
  await writeFile(keys.keysetFile, JSON.stringify({ keysets: [keyset] }))
  return keys
}

export interface SpecBodyInput {
  channel: string
  version: string
  chart: { url: string, name?: string, version: string, digest?: string }
  values?: Record<string, unknown>
}

/** A signed bundle of this spec (compiled as the server would: canonical JSON). */
export async function makeBundle (keys: TestKeys, out: string, spec: SpecBodyInput, options: { revision?: number, ttlMs?: number, chart?: Buffer, nowMs?: number } = {}): Promise<string> {
  const now = options.nowMs ?? Date.now()
  const body = canonicalJson({ channel: spec.channel, version: spec.version, chart: spec.chart, values: spec.values ?? {}, metadata: { channel: spec.channel, version: spec.version, chartVersion: spec.chart.version } })
  const signer = new SpecSigner(onlineKeyFromPem(keys.onlinePem), options.ttlMs ?? 86_400_000, () => now)
  const revision = options.revision ?? 1
  const signed = await signer.sign(body, { channel: spec.channel, version: spec.version, revision })
  const files: BundleFiles = {
    manifest: { format: BUNDLE_FORMAT, channel: spec.channel, version: spec.version, revision, exportedAt: new Date(now).toISOString(), chart: options.chart === undefined ? null : BUNDLE_FILES.chart },
    spec: Buffer.from(body),
    signature: signed.jws,
    keys: Buffer.from(JSON.stringify({ keysets: keys.chain }))
  }
  if (options.chart !== undefined) files.chart = options.chart
  await writeBundle(out, files)
  return out
}

/** Rewrites a bundle after `change` edits its files (the attacker's side: no signing key). */
export async function tamperBundle (path: string, change: (files: BundleFiles) => void): Promise<void> {
  const files = await parseBundle(await readFile(path))
  change(files)
  await writeBundle(path, files)
}

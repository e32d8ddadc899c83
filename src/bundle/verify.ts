/**
 * Verifying an air-gap bundle exactly as the agent verifies an online answer (src/agent/verify.ts):
 * the keyset chain from the trust root, the signed statement over spec.json (body hash,
 * channel, version, revision, expiry), then what only a bundle has: the spec is one the agent
 * can use, and a chart archive inside is the one the signed spec pins by chart.digest.
 * `chartcast bundle verify` and `chartcast agent --from-file` share this one function.
 */
import type { Keyset, TrustAnchor } from '../domain/keyset.js'
import { KeysetError, parseKeysetChain } from '../domain/keyset.js'
import type { SpecStatement } from '../domain/spec-statement.js'
import { sha256Digest } from '../agent/chart-fetch.js'
import { InvalidSpecError, parseChannelSpec, type ChannelSpec } from '../agent/spec.js'
import { verifyAnswer, type VerifyCheck } from '../agent/verify.js'
import type { BundleFiles } from './format.js'

export type BundleCheck = VerifyCheck | 'spec-invalid' | 'chart-digest'

export interface BundleExpectation {
  /** The channel the agent follows; when absent, the one the bundle's signed statement names. */
  channel?: string
  /** The highest revision seen for the channel; null when none was. */
  highestRevision: number | null
  nowMs: number
}

export interface VerifiedBundle {
  spec: ChannelSpec
  statement: SpecStatement
  keyset: Keyset
  /** The chart archive, checked against spec.chart.digest. */
  chart?: Buffer
}

export type BundleResult = { ok: true, bundle: VerifiedBundle } | { ok: false, check: BundleCheck, detail: string }

export async function verifyBundle (files: BundleFiles, trust: TrustAnchor, expect: BundleExpectation): Promise<BundleResult> {
  let chain: Keyset[]
  try {
    chain = parseKeysetChain(JSON.parse(files.keys.toString('utf8')))
  } catch (error) {
    return { ok: false, check: 'keyset-malformed', detail: `keys.json: ${error instanceof KeysetError ? error.message : 'not JSON'}` }
  }
  const channel = expect.channel ?? files.manifest.channel
  const verified = await verifyAnswer({ body: files.spec, signature: files.signature, chain, trust, channel, version: null, highestRevision: expect.highestRevision, nowMs: expect.nowMs })
  if (!verified.ok) return verified

  let spec: ChannelSpec
  try {
    spec = parseChannelSpec(JSON.parse(files.spec.toString('utf8')), 'spec.json')
  } catch (error) {
    return { ok: false, check: 'spec-invalid', detail: error instanceof InvalidSpecError ? error.message : 'spec.json is not JSON' }
  }
  // The statement names the channel; the signed body must agree (it is the body that is applied).
  if (spec.channel !== verified.statement.channel) return { ok: false, check: 'channel', detail: `spec.json is for channel "${spec.channel}", signed for "${verified.statement.channel}"` }

  const bundle: VerifiedBundle = { spec, statement: verified.statement, keyset: verified.keyset }
  if (files.chart !== undefined) {
    const pinned = spec.chart.digest
    if (pinned === undefined) return { ok: false, check: 'chart-digest', detail: 'the bundle carries a chart archive, but the signed spec pins no chart.digest to check it against' }
    const actual = sha256Digest(files.chart)
    if (actual !== pinned) return { ok: false, check: 'chart-digest', detail: `chart.tgz is ${actual}, the signed spec pins ${pinned}` }
    bundle.chart = files.chart
  }
  return { ok: true, bundle }
}

/**
 * Bench set-up for the rollouts phase ("phase 2 with rollouts >= 0.95 of phase 2 without"):
 * three staged rollouts running in every given channel, and spec items of which every second
 * license sends `Chartcast-Applied` (the release it is served now, as an agent that applied it
 * would). Used by bench/run.ts; nothing here measures.
 *
 *   const rollouts = await startRollouts(bench, channelIndexes, RELEASES_PER_CHANNEL)
 *   const items = rolloutSpecItems(bench, licenses)              // LoadItem[] for the LoadClient
 *   const expected = servedSpec(bench, licenses[0]!, items[0]!)  // to verify a sample answer
 */
import { selectSpec, isSanctionedRollback, type Deployment } from '../src/domain/select-spec.js'
import type { LicenseClaims } from '../src/domain/license.js'
import type { CompiledSpec } from '../src/domain/spec.js'
import { normaliseRelease } from '../src/domain/release.js'
import { channelName, releaseInput, releaseVersion, type BenchApp, type MintedLicense } from './lib.js'
import type { LoadItem } from './load.js'

/** Publishes a release (through the store, as bench/lib.ts seeds) and promotes it with a rollout through the API. */
async function publishAndRollOut (bench: BenchApp, channel: string, version: string, rollout: unknown): Promise<void> {
  await bench.app.store.publishRelease(normaliseRelease(releaseInput(version) as never), 'bench-publisher')
  const res = await bench.app.inject({ method: 'POST', url: `/channels/${channel}/releases`, headers: { authorization: `Bearer ${bench.tokens.publisher}` }, payload: { version, rollout } as never })
  if (res.statusCode !== 201) throw new Error(`promoting ${version} with a rollout into ${channel} answered ${res.statusCode}: ${res.body}`)
}

/**
 * The three rollouts of each channel, oldest first: started at 50%, 10% and 1%, so a pull meets
 * all three (the newest, at 1%, is the head), and the answers spread over four releases.
 */
export const ROLLOUT_PLANS = [
  { steps: [{ percent: 50, after: '0s' }, { percent: 100, after: '7d' }] },
  { steps: [{ percent: 10, after: '0s' }, { percent: 100, after: '7d' }] },
  { steps: [{ percent: 1, after: '0s' }, { percent: 10, after: '1d' }, { percent: 100, after: '7d' }] }
] as const

export interface RolloutSetup {
  /** Per channel name, the rolling versions, oldest rollout first. */
  rolling: Map<string, string[]>
}

/**
 * Publishes three releases above the seeded ones in each channel (`releaseVersion(c, n)`,
 * `n + 1`, `n + 2` for n seeded releases) and promotes each with its rollout, through the API.
 */
export async function startRollouts (bench: BenchApp, channelIndexes: readonly number[], releasesPerChannel: number): Promise<RolloutSetup> {
  const rolling = new Map<string, string[]>()
  await Promise.all(channelIndexes.map(async (c) => {
    const versions: string[] = []
    for (const [k, plan] of ROLLOUT_PLANS.entries()) {
      const version = releaseVersion(c, releasesPerChannel + k)
      await publishAndRollOut(bench, channelName(c), version, plan)
      versions.push(version)
    }
    rolling.set(channelName(c), versions)
  }))
  return { rolling }
}

/** The claims the server holds for a bench license (what the spec path decides with). */
function claimsOf (license: MintedLicense): LicenseClaims {
  return { sub: license.sub, exp: Number.MAX_SAFE_INTEGER, channels: [license.channel] }
}

/** What the server answers this license now, as it stands in memory (no request made). */
export function servedVersion (bench: BenchApp, license: MintedLicense, applied: string | null = null): string {
  const state = bench.app.specCache.get(license.channel)
  if (state === undefined) throw new Error(`channel ${license.channel} is not loaded`)
  const deployment: Deployment = { id: license.sub, license: claimsOf(license), channel: license.channel, applied, lastServed: null, pinned: null }
  return selectSpec(state, deployment, Date.now())
}

/**
 * Spec items for the rollouts phase: every license pulls its channel's spec; every second one
 * (even index) sends `Chartcast-Applied` with the version it is served now, the others send
 * nothing (a fresh install, or the W&B operator's way).
 */
export function rolloutSpecItems (bench: BenchApp, licenses: readonly MintedLicense[]): LoadItem[] {
  return licenses.map((license, i) => {
    const headers: Record<string, string> = { authorization: `Bearer ${license.token}` }
    if (i % 2 === 0) headers['chartcast-applied'] = servedVersion(bench, license)
    return { path: `/channels/${license.channel}/spec`, headers }
  })
}

/** The compiled spec (body, ETag) the server should send for one item, to verify a sample. */
export async function servedSpec (bench: BenchApp, license: MintedLicense, item: LoadItem): Promise<CompiledSpec> {
  const applied = item.headers['chartcast-applied'] ?? null
  const state = bench.app.specCache.get(license.channel)
  if (state === undefined) throw new Error(`channel ${license.channel} is not loaded`)
  const version = servedVersion(bench, license, applied)
  const deployment: Deployment = { id: license.sub, license: claimsOf(license), channel: license.channel, applied, lastServed: null, pinned: null }
  return await bench.app.specCache.specFor(state, version, isSanctionedRollback(state, deployment, version))
}

/** How the answers spread over versions (printed by run.ts next to the phase, so a reader sees the mix). */
export function answerMix (bench: BenchApp, licenses: readonly MintedLicense[]): Map<string, number> {
  const mix = new Map<string, number>()
  for (const license of licenses) {
    const version = servedVersion(bench, license)
    mix.set(version, (mix.get(version) ?? 0) + 1)
  }
  return mix
}

/**
 * What selection costs per pull on this instance, in ns: `selectSpec` for each license as phase
 * 2 sends it (every second one with `Chartcast-Applied`), timed over `rounds` passes after one
 * unmeasured pass (which computes each license's cohort once, as the server does per verified
 * license). A figure without HTTP around it: the rollouts variant against its control shows
 * the same cost through the whole server, where it is smaller than the run-to-run noise.
 */
export function selectionNanoseconds (bench: BenchApp, licenses: readonly MintedLicense[], rounds = 20): number {
  const now = Date.now()
  const pulls = licenses.map((license, i) => {
    const state = bench.app.specCache.get(license.channel)
    if (state === undefined) throw new Error(`channel ${license.channel} is not loaded`)
    const applied = i % 2 === 0 ? servedVersion(bench, license) : null
    const deployment: Deployment = { id: license.sub, license: claimsOf(license), channel: license.channel, applied, lastServed: null, pinned: null }
    return { state, deployment }
  })
  let answers = 0
  for (const { state, deployment } of pulls) answers += selectSpec(state, deployment, now).length
  const started = process.hrtime.bigint()
  for (let round = 0; round < rounds; round++) {
    for (const { state, deployment } of pulls) answers += selectSpec(state, deployment, now).length
  }
  const elapsed = Number(process.hrtime.bigint() - started)
  if (answers === 0) throw new Error('selection answered nothing')
  return elapsed / (rounds * pulls.length)
}

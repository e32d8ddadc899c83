/**
 * Variants: phase 2 against another server instance, started with other settings or other
 * data, measured in the same round-robin slices as phases 1-4 so its ratio is as fair as theirs.
 *
 * A variant is a few lines here. Its server is a second app instance in the bench process:
 *   database 'shared'  on the main instance's database (same catalogue, other options)
 *   database 'own'     on a fresh database seeded like the main one, then `setup` runs
 * `BENCH_VARIANTS=a,b` picks some by name (default: all; `none`: none).
 */
import type { BenchApp, MintedLicense } from './lib.js'
import type { LoadItem } from './load.js'
import { rolloutSpecItems, startRollouts } from './rollouts-setup.js'
import { benchSigning } from './signing-setup.js'

/** The rollouts variant's server, for its items (servedVersion reads its spec cache). */
let rolloutsBench: BenchApp | null = null

export interface VariantContext {
  driver: 'pglite' | 'postgres'
  /** The bench's 10,000 licenses: license i is entitled to its own channel (`channel`) and one other. */
  licenses: readonly MintedLicense[]
  /** ch-000 ... in order, each seeded with `releasesPerChannel` releases, the last one the head. */
  channels: readonly string[]
  releasesPerChannel: number
  /** release version i of channel c, as seeded */
  releaseVersion: (c: number, i: number) => string
  /** Phase 2's requests: license i pulls its own channel with `Authorization: Bearer`. */
  specItems: readonly LoadItem[]
  /** A directory the variant may write files into (keys); removed after the run. */
  scratch: string
}

export interface BenchVariant {
  /** Key in the results (`bench/results/latest.json`) and for BENCH_VARIANTS. */
  name: string
  /** Row label in the table. */
  label: string
  /** The phase or variant its req/s is divided by (measured in the same slices). */
  against: 'spec' | 'baselineHeaders' | 'baseline' | 'specOwnControl' | 'specSharedControl'
  /**
   * 'min': passes when ratio >= target (a feature's cost); 'maxCost': passes when
   * 1 - against/this <= target (what the main server pays for something this variant leaves out).
   */
  target: { kind: 'min', ratio: number } | { kind: 'maxCost', cost: number } | null
  database: 'shared' | 'own'
  /** Environment for the variant's server (on top of the bench's). */
  env?: (context: VariantContext) => Record<string, string> | Promise<Record<string, string>>
  /** false: a server that records no check-ins (the internal AppOptions.recordCheckins). */
  recordCheckins?: boolean
  /** After the variant's server started (and, with an own database, was seeded). */
  setup?: (bench: BenchApp, context: VariantContext) => Promise<void>
  /** The requests sent round-robin; default phase 2's. */
  items?: (context: VariantContext) => LoadItem[]
  /** Expected status (default 200). One request is checked with `check` before measuring. */
  expectedStatus?: number
  check?: (body: string, headers: Headers) => boolean
}

export const VARIANTS: BenchVariant[] = [
  {
    // Recording is always on in a real server; this instance shows what it costs.
    name: 'specNoRecording',
    label: '2 with check-ins off',
    against: 'spec',
    target: { kind: 'maxCost', cost: 0.05 },
    database: 'shared',
    recordCheckins: false
  },
  {
    // The controls: instances built as the rollouts and signing variants are, without the
    // feature. A feature's cost is its variant against the control of the same construction,
    // not against the main instance, which also serves phases 3 and 4 and flushes their
    // check-ins (bench/README.md, variants).
    name: 'specOwnControl',
    label: '2 on a second instance with its own database (control of the rollouts variant)',
    against: 'spec',
    target: null,
    database: 'own'
  },
  {
    name: 'specSharedControl',
    label: '2 on a second instance on the shared database (control of the signing variant)',
    against: 'spec',
    target: null,
    database: 'shared'
  },
  {
    // Issue #10: three staged rollouts in every channel (50%, 10%, 1%), half the licenses
    // saying what they run: selection walks cohorts and the applied-version rule per pull.
    name: 'specRollouts',
    label: '2 with 3 rollouts per channel, half sending Chartcast-Applied',
    against: 'specOwnControl',
    target: { kind: 'min', ratio: 0.95 },
    database: 'own',
    setup: async (bench, context) => {
      rolloutsBench = bench
      await startRollouts(bench, context.channels.map((_, c) => c), context.releasesPerChannel)
    },
    items: (context) => {
      if (rolloutsBench === null) throw new Error('specRollouts: items asked for before setup')
      return rolloutSpecItems(rolloutsBench, context.licenses)
    }
  },
  {
    // Issue #11: every answer carries a precomputed Chartcast-Signature.
    name: 'specSigned',
    label: '2 with spec signing on',
    against: 'specSharedControl',
    target: { kind: 'min', ratio: 0.97 },
    database: 'shared',
    env: () => {
      const signing = benchSigning()
      process.once('exit', () => { signing.close() })
      return signing.env
    },
    check: (_body, headers) => headers.get('chartcast-signature') !== null
  }
]

export function selectedVariants (): BenchVariant[] {
  const wanted = process.env.BENCH_VARIANTS
  if (wanted === undefined || wanted === '') return VARIANTS
  if (wanted === 'none') return []
  const names = wanted.split(',').map((n) => n.trim()).filter((n) => n !== '')
  const unknown = names.filter((n) => !VARIANTS.some((v) => v.name === n))
  if (unknown.length > 0) throw new Error(`BENCH_VARIANTS: unknown ${unknown.join(', ')} (known: ${VARIANTS.map((v) => v.name).join(', ')})`)
  // A variant measured against a control brings the control along.
  const picked = new Set(names)
  for (const v of VARIANTS) if (picked.has(v.name) && VARIANTS.some((c) => c.name === v.against)) picked.add(v.against)
  return VARIANTS.filter((v) => picked.has(v.name))
}

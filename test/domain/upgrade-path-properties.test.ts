/** Property-based tests (fast-check) of next-hop selection (src/domain/upgrade-path.ts). */
import t from 'tap'
import fc from 'fast-check'
import semver from 'semver'
import { admits, nextHop, upgradePath, type HopRule } from '../../src/domain/upgrade-path.js'

const version = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1 }), fc.constantFrom('', '-rc.1'))
  .map(([major, minor, patch, pre]) => `${major}.${minor}.${patch}${pre}`)
const range = fc.oneof(
  fc.constant(null),
  version.map((v) => `>=${v}`),
  version.map((v) => `^${v}`),
  fc.tuple(version, version).map(([a, b]) => `>=${a} <${b}`)
)
const rule: fc.Arbitrary<HopRule> = fc.record({ required: fc.boolean(), upgradeFrom: range })

/** A channel: distinct versions highest first, each with a rule; and the version a deployment runs. */
const scenario = fc.record({
  channel: fc.uniqueArray(fc.tuple(version, rule), { minLength: 1, maxLength: 8, selector: ([v]) => v }),
  applied: fc.option(version, { nil: null })
}).map(({ channel, applied }) => {
  const sorted = [...channel].sort(([a], [b]) => semver.rcompare(a, b))
  return { eligible: sorted.map(([v]) => v), rules: new Map(sorted), applied }
})

const RUNS = { numRuns: 2_000 }

t.test('the target never skips a required release above the applied one', async (t) => {
  fc.assert(fc.property(scenario, ({ eligible, rules, applied }) => {
    const hop = nextHop(eligible, rules, applied)
    if (hop.kind !== 'target' || applied === null || !semver.gt(hop.version, applied)) return true
    return eligible.every((r) => !(rules.get(r)!.required && semver.gt(r, applied) && semver.lt(r, hop.version)))
  }), RUNS)
  t.pass('held for every generated channel')
})

t.test('a target above the applied version is admitted by its upgradeFrom', async (t) => {
  fc.assert(fc.property(scenario, ({ eligible, rules, applied }) => {
    const hop = nextHop(eligible, rules, applied)
    if (hop.kind !== 'target' || applied === null || !semver.gt(hop.version, applied)) return true
    return admits(rules.get(hop.version)!, applied)
  }), RUNS)
  t.pass('held for every generated channel')
})

t.test('the target is above the applied version unless nothing eligible is', async (t) => {
  fc.assert(fc.property(scenario, ({ eligible, rules, applied }) => {
    const hop = nextHop(eligible, rules, applied)
    const anythingAbove = applied !== null && eligible.some((r) => semver.gt(r, applied))
    if (!anythingAbove) return hop.kind === 'target' && hop.version === eligible[0]
    return hop.kind === 'no-path' || semver.gt(hop.version, applied)
  }), RUNS)
  t.pass('held for every generated channel')
})

t.test('no path only when every release up to the cap refuses, and it names exactly those', async (t) => {
  fc.assert(fc.property(scenario, ({ eligible, rules, applied }) => {
    const hop = nextHop(eligible, rules, applied)
    if (hop.kind !== 'no-path' || applied === null) return true
    const above = eligible.filter((r) => semver.gt(r, applied))
    const required = above.filter((r) => rules.get(r)!.required)
    const cap = required.length === 0 ? above[0]! : required[required.length - 1]!
    const upToCap = above.filter((r) => semver.lte(r, cap))
    return upToCap.every((r) => !admits(rules.get(r)!, applied)) && JSON.stringify(hop.refusedBy) === JSON.stringify(upToCap)
  }), RUNS)
  t.pass('held for every generated channel')
})

t.test('a path only climbs, and ends where nextHop stays put', async (t) => {
  fc.assert(fc.property(scenario, version, ({ eligible, rules }, from) => {
    const path = upgradePath(() => eligible, rules, from)
    if (!('hops' in path)) return true
    const { hops } = path
    // Only the first hop may go down (a fallback from above the channel).
    for (let i = 1; i < hops.length; i++) if (!semver.gt(hops[i]!, hops[i - 1]!)) return false
    const end = hops.at(-1) ?? from
    const last = nextHop(eligible, rules, end)
    return last.kind === 'target' && last.version === end
  }), RUNS)
  t.pass('held for every generated channel and starting version')
})

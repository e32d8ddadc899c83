import t from 'tap'
import { admits, checkUpgradeFromRange, memoisedNextHop, nextHop, noUpgradePathError, upgradePath, type HopRule } from '../../src/domain/upgrade-path.js'

/** `rules('1.5.0!', '2.0.0>=1.5.0')`: "!" marks a required membership, a range after the version is its upgradeFrom. */
function rules (...specs: string[]): Map<string, HopRule> {
  const map = new Map<string, HopRule>()
  for (const spec of specs) {
    const match = /^([0-9][^!<>=~^ ]*)(!?)(.*)$/.exec(spec)!
    map.set(match[1]!, { required: match[2] === '!', upgradeFrom: match[3] === '' ? null : match[3]! })
  }
  return map
}

interface Case { name: string, eligible: string[], rules: string[], applied: string | null, want: string | { refusedBy: string[] } }

const cases: Case[] = [
  { name: 'a fresh install gets the highest release', eligible: ['2.0.0', '1.5.0', '1.0.0'], rules: ['1.5.0!', '2.0.0>=1.5.0'], applied: null, want: '2.0.0' },
  { name: 'without rules the highest release is the answer', eligible: ['2.0.0', '1.5.0', '1.0.0'], rules: [], applied: '1.0.0', want: '2.0.0' },
  { name: 'already on the highest: stays', eligible: ['2.0.0', '1.5.0'], rules: ['1.5.0!'], applied: '2.0.0', want: '2.0.0' },
  { name: 'above everything eligible (its release withdrawn): the highest, a downgrade', eligible: ['1.5.0', '1.0.0'], rules: [], applied: '2.0.0', want: '1.5.0' },
  { name: 'a required release stops a deployment below it', eligible: ['2.0.0', '1.5.0', '1.0.0'], rules: ['1.5.0!'], applied: '1.0.0', want: '1.5.0' },
  { name: 'the lowest required release above is the cap', eligible: ['3.0.0', '2.0.0', '1.5.0', '1.0.0'], rules: ['1.5.0!', '2.0.0!'], applied: '1.0.0', want: '1.5.0' },
  { name: 'a required release at or below the applied one does not cap', eligible: ['2.0.0', '1.5.0', '1.0.0'], rules: ['1.5.0!', '1.0.0!'], applied: '1.5.0', want: '2.0.0' },
  { name: 'below the cap, the highest admitted release is the target', eligible: ['1.9.0', '1.8.0', '1.6.0', '1.5.0'], rules: ['1.9.0!', '1.8.0>=1.6.0'], applied: '1.5.0', want: '1.9.0' },
  { name: 'the cap itself refusing: the next lower one that admits', eligible: ['1.9.0', '1.8.0', '1.6.0', '1.5.0'], rules: ['1.9.0!>=1.8.0', '1.8.0>=1.6.0'], applied: '1.5.0', want: '1.6.0' },
  { name: 'upgradeFrom refusing the highest, no required: a lower one that admits', eligible: ['2.0.0', '1.5.0', '1.0.0'], rules: ['2.0.0>=1.5.0'], applied: '1.0.0', want: '1.5.0' },
  { name: 'nothing up to the cap admits: no path, naming every refusing release', eligible: ['2.0.0', '1.6.0', '1.5.0', '1.0.0'], rules: ['1.6.0!>=1.5.0', '1.5.0>=1.2.0'], applied: '1.0.0', want: { refusedBy: ['1.6.0', '1.5.0'] } },
  { name: 'a release above the cap admitting does not help', eligible: ['2.0.0', '1.5.0', '1.0.0'], rules: ['1.5.0!>=1.2.0'], applied: '1.0.0', want: { refusedBy: ['1.5.0'] } },
  { name: 'the applied release need not be in the channel', eligible: ['2.0.0', '1.5.0'], rules: ['2.0.0>=1.4.0'], applied: '1.4.2', want: '2.0.0' },
  { name: 'a prerelease counts by precedence in upgradeFrom', eligible: ['2.0.0', '1.0.0'], rules: ['2.0.0>=1.5.0'], applied: '1.6.0-rc.1', want: '2.0.0' },
  { name: 'a prerelease below the range is refused', eligible: ['2.0.0'], rules: ['2.0.0>=1.5.0'], applied: '1.5.0-rc.1', want: { refusedBy: ['2.0.0'] } },
  { name: 'prereleases of the channel order below their release', eligible: ['2.0.0', '2.0.0-rc.2', '1.0.0'], rules: ['2.0.0-rc.2!'], applied: '2.0.0-rc.1', want: '2.0.0-rc.2' },
  { name: 'the only release eligible, lower than applied', eligible: ['1.0.0'], rules: ['1.0.0!>=9.0.0'], applied: '1.2.0', want: '1.0.0' }
]

t.test('next hop', async (t) => {
  for (const c of cases) {
    const hop = nextHop(c.eligible, rules(...c.rules), c.applied)
    if (typeof c.want === 'string') t.same(hop, { kind: 'target', version: c.want }, c.name)
    else t.same(hop, { kind: 'no-path', from: c.applied, refusedBy: c.want.refusedBy }, c.name)
  }
})

t.test('nextHop needs an eligible release', async (t) => {
  t.throws(() => nextHop([], new Map(), '1.0.0'))
})

t.test('the memoised answer is the computed one, and a new rules map is a new memo', async (t) => {
  const eligible = ['2.0.0', '1.5.0', '1.0.0']
  const first = rules('1.5.0!')
  t.same(memoisedNextHop(eligible, first, '1.0.0'), { kind: 'target', version: '1.5.0' })
  t.same(memoisedNextHop(eligible, first, '1.0.0'), { kind: 'target', version: '1.5.0' }, 'the remembered answer')
  t.same(memoisedNextHop(eligible, rules(), '1.0.0'), { kind: 'target', version: '2.0.0' }, 'rules changed: answered afresh')
  t.same(memoisedNextHop(eligible, first, null), { kind: 'target', version: '2.0.0' })
})

t.test('the NO_UPGRADE_PATH problem names the applied version and the refusing releases', async (t) => {
  const one = noUpgradePathError('stable', { kind: 'no-path', from: '1.0.0', refusedBy: ['1.5.0'] })
  t.equal(one.code, 'NO_UPGRADE_PATH')
  t.equal(one.status, 409)
  t.match(one.detail, /from 1\.0\.0 in channel "stable".*release 1\.5\.0 does not admit/)
  t.match(noUpgradePathError('stable', { kind: 'no-path', from: '1.0.0', refusedBy: ['1.6.0', '1.5.0'] }).detail, /releases 1\.6\.0, 1\.5\.0 do not admit/)
})

t.test('upgradeFrom must be a semver range', async (t) => {
  t.equal(checkUpgradeFromRange('>=1.4.0'), '>=1.4.0')
  t.equal(checkUpgradeFromRange('>=1.4.0 <2.0.0 || 0.9.x'), '>=1.4.0 <2.0.0 || 0.9.x')
  for (const bad of ['', '   ', 'latest', '>=banana', '1.2.3.4']) {
    t.throws(() => checkUpgradeFromRange(bad), { code: 'VALIDATION_FAILED' }, JSON.stringify(bad))
  }
  t.ok(admits({ required: false, upgradeFrom: null }, '0.0.1'))
  t.notOk(admits({ required: false, upgradeFrom: '>=1.4.0' }, '1.3.9'))
})

t.test('a path takes every hop in order and ends at the answer', async (t) => {
  const eligible = ['3.0.0', '2.1.0', '2.0.0', '1.5.0', '1.0.0']
  const r = rules('1.5.0!', '2.0.0!>=1.5.0', '3.0.0>=2.1.0')
  t.same(upgradePath(() => eligible, r, '1.0.0'), { hops: ['1.5.0', '2.0.0', '2.1.0', '3.0.0'] })
  t.same(upgradePath(() => eligible, r, '2.0.0'), { hops: ['2.1.0', '3.0.0'] })
  t.same(upgradePath(() => eligible, r, '3.0.0'), { hops: [] }, 'already the answer')
  t.same(upgradePath(() => eligible, r, '4.0.0'), { hops: ['3.0.0'] }, 'above the channel: the fallback is the path')
  t.same(upgradePath(() => ['2.0.0', '1.0.0'], rules('2.0.0>=1.5.0'), '1.2.0'), { kind: 'no-path', from: '1.2.0', refusedBy: ['2.0.0'] })
  t.same(upgradePath(() => ['2.0.0', '1.5.0'], rules('2.0.0>=1.6.0'), '1.0.0'), { kind: 'no-path', from: '1.5.0', refusedBy: ['2.0.0'] }, 'stuck after the first hop: the hop it is stuck at')
})

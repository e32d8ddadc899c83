import t from 'tap'
import { selectSpec, type ChannelVersions, type Deployment } from '../../src/domain/select-spec.js'
import type { HopRule } from '../../src/domain/upgrade-path.js'

const NOW = 1_700_000_000_000
const channel: ChannelVersions = { name: 'stable', active: ['1.2.0', '1.1.0', '1.0.0'], head: { version: '1.2.0' }, memberships: new Map() }
const deployment = (extra: Partial<Deployment> = {}): Deployment => ({ id: 'cluster-1', license: null, channel: 'stable', applied: null, lastServed: null, pinned: null, ...extra })

t.test('a deployment that pins nothing gets the head when no rule holds it back', async (t) => {
  t.equal(selectSpec(channel, deployment(), NOW), '1.2.0')
  t.equal(selectSpec(channel, deployment({ applied: '1.0.0' }), NOW), '1.2.0')
  t.equal(selectSpec(channel, deployment({ id: null }), NOW), '1.2.0', 'anonymous operator pull')
})

t.test('a pinned version in the channel is what the deployment gets', async (t) => {
  t.equal(selectSpec(channel, deployment({ pinned: '1.0.0' }), NOW), '1.0.0')
  t.equal(selectSpec(channel, deployment({ pinned: '1.2.0' }), NOW), '1.2.0')
})

t.test('a pinned version not (or no longer) in the channel is RELEASE_NOT_FOUND', async (t) => {
  t.throws(() => selectSpec(channel, deployment({ pinned: '0.9.0' }), NOW), { code: 'RELEASE_NOT_FOUND', message: /0\.9\.0.*stable/ })
})

t.test('a channel without a head is CHANNEL_EMPTY unless the pin is active', async (t) => {
  const empty: ChannelVersions = { name: 'beta', active: [], head: null, memberships: new Map() }
  t.throws(() => selectSpec(empty, deployment(), NOW), { code: 'CHANNEL_EMPTY' })
  t.throws(() => selectSpec(empty, deployment({ pinned: '1.0.0' }), NOW), { code: 'RELEASE_NOT_FOUND' })
})

const guarded: ChannelVersions = {
  name: 'stable',
  active: ['2.0.0', '1.5.0', '1.0.0'],
  head: { version: '2.0.0' },
  memberships: new Map<string, HopRule>([['1.5.0', { required: true, upgradeFrom: null }], ['2.0.0', { required: false, upgradeFrom: '>=1.5.0' }]])
}

t.test('upgrade paths: the next hop from the applied version, not the head', async (t) => {
  t.equal(selectSpec(guarded, deployment({ applied: '1.0.0' }), NOW), '1.5.0', 'the required release first')
  t.equal(selectSpec(guarded, deployment({ applied: '1.5.0' }), NOW), '2.0.0')
  t.equal(selectSpec(guarded, deployment(), NOW), '2.0.0', 'a fresh install gets the highest')
})

t.test('the version last served stands in for an applied version the client does not send', async (t) => {
  t.equal(selectSpec(guarded, deployment({ lastServed: '1.0.0' }), NOW), '1.5.0')
  t.equal(selectSpec(guarded, deployment({ applied: '1.5.0', lastServed: '1.0.0' }), NOW), '2.0.0', 'what the client says wins')
})

t.test('no admitted release up to the cap is NO_UPGRADE_PATH; a pin is served as today', async (t) => {
  const strict: ChannelVersions = { ...guarded, memberships: new Map([['1.5.0', { required: true, upgradeFrom: '>=1.2.0' }]]) }
  t.throws(() => selectSpec(strict, deployment({ applied: '1.0.0' }), NOW), { code: 'NO_UPGRADE_PATH', message: /from 1\.0\.0.*1\.5\.0/ })
  t.equal(selectSpec(strict, deployment({ applied: '1.0.0', pinned: '2.0.0' }), NOW), '2.0.0')
})

import t from 'tap'
import { selectSpec, type ChannelVersions, type Deployment } from '../../src/domain/select-spec.js'

const NOW = 1_700_000_000_000
const channel: ChannelVersions = { name: 'stable', active: ['1.2.0', '1.1.0', '1.0.0'], head: { version: '1.2.0' } }
const deployment = (extra: Partial<Deployment> = {}): Deployment => ({ id: 'cluster-1', license: null, channel: 'stable', applied: null, pinned: null, ...extra })

t.test('a deployment that pins nothing gets the head, whatever it has applied', async (t) => {
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
  const empty: ChannelVersions = { name: 'beta', active: [], head: null }
  t.throws(() => selectSpec(empty, deployment(), NOW), { code: 'CHANNEL_EMPTY' })
  t.throws(() => selectSpec(empty, deployment({ pinned: '1.0.0' }), NOW), { code: 'RELEASE_NOT_FOUND' })
})

import t from 'tap'
import { assertChannelAccepts, channelAccepts, checkAcceptsRange, checkPollInterval, selectChannelHead, sortVersionsDescending } from '../../src/domain/channel.js'
import { ChartcastError } from '../../src/errors.js'

const active = (version: string) => ({ version, withdrawn: false })
const withdrawn = (version: string) => ({ version, withdrawn: true })

t.test('an empty channel has no head', async (t) => {
  t.equal(selectChannelHead([]), null)
})

t.test('the head is the highest semver, whatever the order of promotion', async (t) => {
  t.equal(selectChannelHead([active('1.2.0'), active('1.10.0'), active('1.9.0')]), '1.10.0', 'numeric, not lexical')
  t.equal(selectChannelHead([active('1.10.0'), active('1.2.0')]), '1.10.0')
})

t.test('withdrawn releases are never the head; the next highest takes over', async (t) => {
  t.equal(selectChannelHead([active('1.0.0'), withdrawn('2.0.0'), active('1.5.0')]), '1.5.0')
  t.equal(selectChannelHead([withdrawn('1.0.0')]), null)
})

t.test('a release beats its own prereleases; prereleases order by SemVer 11', async (t) => {
  t.equal(selectChannelHead([active('2.0.0-rc.1'), active('2.0.0'), active('2.0.0-rc.2')]), '2.0.0')
  t.equal(selectChannelHead([active('2.0.0-rc.10'), active('2.0.0-rc.2')]), '2.0.0-rc.10')
  t.equal(selectChannelHead([active('2.0.0-beta'), active('2.0.0-alpha.1')]), '2.0.0-beta')
  t.equal(selectChannelHead([active('1.9.9'), active('2.0.0-alpha')]), '2.0.0-alpha')
})

t.test('sortVersionsDescending sorts highest first without modifying its input', async (t) => {
  const input = ['1.0.0', '10.0.0', '2.0.0-rc.1', '2.0.0', '1.10.0']
  t.same(sortVersionsDescending(input), ['10.0.0', '2.0.0', '2.0.0-rc.1', '1.10.0', '1.0.0'])
  t.same(input, ['1.0.0', '10.0.0', '2.0.0-rc.1', '2.0.0', '1.10.0'])
})

t.test('checkAcceptsRange returns valid ranges and refuses others with VALIDATION_FAILED', async (t) => {
  t.equal(checkAcceptsRange('>=0.18.0 <1.0.0'), '>=0.18.0 <1.0.0')
  t.equal(checkAcceptsRange('^1.2.0'), '^1.2.0')
  for (const bad of ['not a range', '>=banana', '1.0.0 || >>2']) {
    t.throws(() => checkAcceptsRange(bad), { code: 'VALIDATION_FAILED' }, bad)
  }
})

t.test('checkPollInterval accepts durations and refuses the rest', async (t) => {
  t.equal(checkPollInterval('1h'), '1h')
  t.equal(checkPollInterval('90s'), '90s')
  for (const bad of ['1 hour', '-5m', 'soon', '1.5h']) t.throws(() => checkPollInterval(bad), { code: 'VALIDATION_FAILED' }, bad)
})

t.test('no range accepts every version, prereleases included', async (t) => {
  t.ok(channelAccepts(null, '0.0.1'))
  t.ok(channelAccepts(null, '3.0.0-alpha.1'))
})

t.test('a range accepts what satisfies it and refuses what does not', async (t) => {
  const range = '>=0.18.0 <1.0.0'
  t.ok(channelAccepts(range, '0.18.0'))
  t.ok(channelAccepts(range, '0.99.3'))
  t.notOk(channelAccepts(range, '0.17.9'))
  t.notOk(channelAccepts(range, '1.0.0'))
})

t.test('prereleases are accepted only where the range names a prerelease of that tuple', async (t) => {
  t.notOk(channelAccepts('>=1.0.0 <2.0.0', '1.5.0-rc.1'), 'plain range excludes prereleases')
  t.ok(channelAccepts('>=1.5.0-rc.0 <2.0.0', '1.5.0-rc.1'), 'same [major, minor, patch] tuple opts in')
  t.notOk(channelAccepts('>=1.5.0-rc.0 <2.0.0', '1.6.0-rc.1'), 'another tuple does not')
})

t.test('assertChannelAccepts throws VERSION_NOT_ACCEPTED naming channel, range and version', async (t) => {
  t.doesNotThrow(() => assertChannelAccepts('stable', '^1.0.0', '1.2.3'))
  const error = t.throws(() => assertChannelAccepts('stable', '^1.0.0', '2.0.0')) as unknown
  t.ok(error instanceof ChartcastError)
  const e = error as ChartcastError
  t.equal(e.code, 'VERSION_NOT_ACCEPTED')
  t.equal(e.status, 422)
  t.match(e.detail, /stable/)
  t.match(e.detail, /\^1\.0\.0/)
  t.match(e.detail, /2\.0\.0/)
})

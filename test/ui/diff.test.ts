/** The dashboard's pure helpers: the release diff, the rollout steps field, version order. */
import t from 'tap'
import { diffLines } from '../../src/ui/diff.js'
import { parseSteps } from '../../src/ui/rollout-input.js'
import { compareVersionsDescending } from '../../src/ui/versions.js'

t.test('diffLines keeps common lines and marks the rest removed or added, in order', async (t) => {
  t.same(diffLines('a\nb\nc', 'a\nx\nc'), [
    { kind: 'same', text: 'a' }, { kind: 'removed', text: 'b' }, { kind: 'added', text: 'x' }, { kind: 'same', text: 'c' }
  ])
  t.same(diffLines('same', 'same'), [{ kind: 'same', text: 'same' }])
  t.same(diffLines('', 'new'), [{ kind: 'removed', text: '' }, { kind: 'added', text: 'new' }])
})

t.test('parseSteps reads "10% 0s, 100% 24h" and names what is wrong otherwise', async (t) => {
  t.same(parseSteps('10% 0s, 50% after 1h, 100% 24h'), { ok: true, steps: [{ percent: 10, after: '0s' }, { percent: 50, after: '1h' }, { percent: 100, after: '24h' }] })
  t.match(parseSteps('10% 1h, 100% 2h'), { ok: false, message: /first step/ })
  t.match(parseSteps('50% 0s, 10% 1h, 100% 2h'), { ok: false, message: /rise/ })
  t.match(parseSteps('10% 0s, 90% 1h'), { ok: false, message: /last step is 100%/ })
  t.match(parseSteps('ten percent'), { ok: false, message: /"ten percent"/ })
  t.match(parseSteps(''), { ok: false, message: /at least one step/ })
})

t.test('versions sort by semver precedence, highest first, "unknown" last', async (t) => {
  t.same(['1.0.0', 'unknown', '1.10.0', '1.2.0', '1.10.0-rc.1', '1.10.0-rc.10', '1.10.0-beta'].sort(compareVersionsDescending),
    ['1.10.0', '1.10.0-rc.10', '1.10.0-rc.1', '1.10.0-beta', '1.2.0', '1.0.0', 'unknown'])
})

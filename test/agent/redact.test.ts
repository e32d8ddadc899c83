import t from 'tap'
import { HelmError } from '../../src/agent/appliers/helm.js'
import { describeFailure, keepHead, keepTail, redact, secretSpellings } from '../../src/agent/redact.js'

t.test('every string value from four characters up, in plain, escaped, base64 and per-line spellings', async (t) => {
  const spellings = secretSpellings({ a: 'pa"ss', b: ['abc', 123456], c: { d: 'one-line\nsecond-line' }, e: true, f: null }, ['the-license'])
  for (const s of ['pa"ss', 'pa\\"ss', Buffer.from('pa"ss').toString('base64'), '123456', 'one-line', 'second-line', 'the-license']) {
    t.ok(spellings.includes(s), s)
  }
  t.notOk(spellings.includes('abc'), 'three characters are left alone')
  t.notOk(spellings.includes('true'), 'booleans are not values worth hiding')
  t.equal(redact('x pa\\"ss y one-line\nsecond-line 123456', spellings), 'x [redacted] y [redacted] [redacted]', 'the multi-line value whole, and the number')
})

t.test('a value containing another is replaced whole', async (t) => {
  const spellings = secretSpellings({ url: 'postgres://app:s3cr3t@db', pw: 's3cr3t' })
  t.equal(redact('connect postgres://app:s3cr3t@db failed; s3cr3t', spellings), 'connect [redacted] failed; [redacted]')
})

t.test('cuts never split a surrogate pair and stay within the limit', async (t) => {
  const text = 'a'.repeat(9) + '😀' + 'b'.repeat(10)
  for (let max = 5; max < text.length; max++) {
    const head = keepHead(text, max)
    const tail = keepTail(text, max)
    t.ok(head.length <= max && tail.length <= max, `max ${max}`)
    t.notMatch(head, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/)
    t.notMatch(tail, /(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/)
  }
})

t.test('helm failures: status then the redacted end of stderr; the log reason is the last lines', async (t) => {
  const err = new HelmError('helm exited with 1: ...', 1, 'exited with 1', 'warning one\nwarning two\nError: value "topsecret" invalid\n')
  const failure = describeFailure(err, secretSpellings({ p: 'topsecret' }))
  t.equal(failure.detail, 'helm exited with 1: warning one\nwarning two\nError: value "[redacted]" invalid')
  t.equal(failure.reason, 'helm exited with 1: warning one | warning two | Error: value "[redacted]" invalid')
  t.same(describeFailure(new HelmError('helm was killed by SIGKILL', null, 'was killed by SIGKILL', ''), []), { detail: 'helm was killed by SIGKILL', reason: 'helm was killed by SIGKILL' })
})

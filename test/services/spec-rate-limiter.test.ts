import t from 'tap'
import { ChartcastError } from '../../src/errors.js'
import { InvalidLicenseGuard, SpecRateLimiter } from '../../src/services/spec-rate-limiter.js'

function refusal (fn: () => void): ChartcastError | null {
  try {
    fn()
    return null
  } catch (error) {
    if (error instanceof ChartcastError) return error
    throw error
  }
}

t.test('counts per license object, each with its own window', async (t) => {
  let now = 0
  const limiter = new SpecRateLimiter({ limit: 2, windowMs: 10_000 }, () => now)
  const first = { sub: 'a' }
  const second = { sub: 'a' } // equal content, another verified token: counted separately
  limiter.countLicense(first)
  limiter.countLicense(first)
  now = 2500
  const error = refusal(() => limiter.countLicense(first))
  t.equal(error?.code, 'RATE_LIMITED')
  t.same(error?.headers, { 'retry-after': '8', 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '8' })
  t.equal(refusal(() => limiter.countLicense(second)), null, 'another license is not affected')
  now = 10_000
  t.equal(refusal(() => limiter.countLicense(first)), null, 'the next window lets it through again')
})

t.test('anonymous pulls count per address', async (t) => {
  const limiter = new SpecRateLimiter({ limit: 1, windowMs: 1000 }, () => 0)
  limiter.countAddress('10.0.0.1')
  t.equal(refusal(() => limiter.countAddress('10.0.0.1'))?.code, 'RATE_LIMITED')
  t.equal(refusal(() => limiter.countAddress('10.0.0.2')), null)
  t.equal(limiter.trackedAddresses, 2)
})

t.test('the address table stays bounded under a flood of addresses', async (t) => {
  let now = 0
  const limiter = new SpecRateLimiter({ limit: 5, windowMs: 1000 }, () => now)
  for (let i = 0; i < 100_000; i++) limiter.countAddress(`a${i}`)
  t.equal(limiter.trackedAddresses, 100_000)
  now = 500
  limiter.countAddress('one more, same window')
  t.equal(limiter.trackedAddresses, 100_000, 'full of live windows: the oldest is dropped')
  now = 1000
  limiter.countAddress('after the window')
  t.equal(limiter.trackedAddresses, 2, 'expired windows are swept first; the one opened at 500 ms stays')
})

t.test('refuses a policy that could never pass a request', async (t) => {
  t.throws(() => new SpecRateLimiter({ limit: 0, windowMs: 1000 }))
  t.throws(() => new SpecRateLimiter({ limit: 1, windowMs: 0 }))
})

t.test('the invalid-license guard refuses only after the limit of failures, until the window ends', async (t) => {
  let now = 0
  const guard = new InvalidLicenseGuard({ limit: 2, windowMs: 60_000 }, () => now)
  guard.check('10.0.0.1')
  guard.failed('10.0.0.1')
  guard.check('10.0.0.1')
  guard.failed('10.0.0.1')
  now = 15_000
  const error = refusal(() => guard.check('10.0.0.1'))
  t.equal(error?.code, 'RATE_LIMITED')
  t.equal(error?.headers['retry-after'], '45')
  t.equal(refusal(() => guard.check('10.0.0.1'))?.code, 'RATE_LIMITED', 'checking does not count')
  t.equal(refusal(() => guard.check('10.0.0.2')), null, 'another address')
  now = 60_000
  t.equal(refusal(() => guard.check('10.0.0.1')), null, 'the next window starts clean')
})

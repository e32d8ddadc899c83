import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

t.test('check-in and report settings: defaults', async (t) => {
  const config = loadConfig({})
  t.equal(config.checkinFlushIntervalMs, 5000)
  t.equal(config.checkinMaxPending, 1_000_000)
  t.equal(config.checkinFlushConcurrency, 1)
  t.equal(config.reportRetentionSeconds, 30 * 86_400)
})

t.test('check-in and report settings: read and checked', async (t) => {
  const config = loadConfig({ CHECKIN_FLUSH_INTERVAL: '250ms', CHECKIN_MAX_PENDING: '10', REPORT_RETENTION: '7d' })
  t.equal(config.checkinFlushIntervalMs, 250)
  t.equal(config.checkinMaxPending, 10)
  t.equal(config.reportRetentionSeconds, 7 * 86_400)
  t.throws(() => loadConfig({ CHECKIN_FLUSH_INTERVAL: 'often' }), new ConfigError('CHECKIN_FLUSH_INTERVAL must be a duration between 100ms and 1h, got "often"'))
  t.throws(() => loadConfig({ CHECKIN_FLUSH_INTERVAL: '10ms' }), { name: 'ConfigError', message: /CHECKIN_FLUSH_INTERVAL/ })
  t.throws(() => loadConfig({ CHECKIN_MAX_PENDING: '0' }), { name: 'ConfigError', message: /CHECKIN_MAX_PENDING must be between 1/ })
  t.equal(loadConfig({ CHECKIN_FLUSH_CONCURRENCY: '2' }).checkinFlushConcurrency, 2)
  t.throws(() => loadConfig({ CHECKIN_FLUSH_CONCURRENCY: '0' }), { name: 'ConfigError', message: /CHECKIN_FLUSH_CONCURRENCY must be between 1/ })
  t.throws(() => loadConfig({ CHECKIN_FLUSH_CONCURRENCY: '9' }), { name: 'ConfigError', message: /CHECKIN_FLUSH_CONCURRENCY/ })
  t.throws(() => loadConfig({ REPORT_RETENTION: '30m' }), { name: 'ConfigError', message: /REPORT_RETENTION must be .* at least 1h/ })
})

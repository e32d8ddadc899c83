import t from 'tap'
import { ConfigError } from '../../src/agent/errors.js'
import { resolveAgentOptions } from '../../src/agent/options.js'

const base = { server: 'https://deploy.example.com', channel: 'stable', licenseFile: '/etc/license', release: 'acme', namespace: 'acme' }

t.test('flags are read, with defaults filled in', async (t) => {
  const o = resolveAgentOptions(base, {})
  t.match(o, { server: 'https://deploy.example.com', channel: 'stable', release: 'acme', namespace: 'acme', applier: 'helm', stateDir: './.chartcast', once: false, allowDowngrade: false, report: true, helmBin: 'helm', helmTimeoutMs: 600_000, logLevel: 'info' })
  t.equal(o.intervalMs, undefined, 'no interval: the server hint decides')
})

t.test('every setting can come from the environment; a flag wins over its variable', async (t) => {
  const env = {
    CHARTCAST_SERVER: 'https://env.example.com',
    CHARTCAST_CHANNEL: 'beta',
    CHARTCAST_LICENSE_FILE: '/env/license',
    CHARTCAST_RELEASE: 'envrel',
    CHARTCAST_NAMESPACE: 'envns',
    CHARTCAST_USER_VALUES: '/env/values.yaml',
    CHARTCAST_CR: '/env/cr.yaml',
    CHARTCAST_APPLIER: 'dir',
    CHARTCAST_OUT: '/env/out',
    CHARTCAST_STATE_DIR: '/env/state',
    CHARTCAST_INTERVAL: '15m',
    CHARTCAST_ONCE: 'true',
    CHARTCAST_ALLOW_DOWNGRADE: '1',
    CHARTCAST_PIN_VERSION: '1.2.3',
    CHARTCAST_NO_REPORT: 'yes',
    CHARTCAST_LOG_LEVEL: 'debug',
    HELM_BIN: '/opt/helm',
    CHARTCAST_HELM_TIMEOUT: '5m',
    CHARTCAST_MAX_FAILURES: '5',
    CHARTCAST_RETRY_FAILED: 'true',
    CHARTCAST_WINDOW: 'Sat,Sun 02:00-06:00 Europe/Berlin; Mon-Fri 22:00-01:00 UTC',
    CHARTCAST_APPLY_NOW: 'on',
    CHARTCAST_MAX_BODY: '2MiB'
  }
  const { windows, ...fromEnv } = resolveAgentOptions({}, env)
  t.same(windows.map((w) => w.text), ['Sat,Sun 02:00-06:00 Europe/Berlin', 'Mon-Fri 22:00-01:00 UTC'], 'CHARTCAST_WINDOW holds windows separated by ;')
  t.same(fromEnv, {
    server: 'https://env.example.com',
    channel: 'beta',
    licenseFile: '/env/license',
    release: 'envrel',
    namespace: 'envns',
    userValues: '/env/values.yaml',
    cr: '/env/cr.yaml',
    applier: 'dir',
    out: '/env/out',
    stateDir: '/env/state',
    intervalMs: 900_000,
    once: true,
    fromFile: undefined,
    allowDowngrade: true,
    pinVersion: '1.2.3',
    report: false,
    helmBin: '/opt/helm',
    helmTimeoutMs: 300_000,
    logLevel: 'debug',
    maxFailures: 5,
    retryFailed: true,
    applyNow: true,
    maxBodyBytes: 2 * 1024 * 1024
  })
  const flagsWin = resolveAgentOptions({ channel: 'stable', release: 'flagrel', interval: '30s' }, env)
  t.equal(flagsWin.channel, 'stable')
  t.equal(flagsWin.release, 'flagrel')
  t.equal(flagsWin.intervalMs, 30_000)
  t.same(resolveAgentOptions({ ...base, window: ['Sun 01:00-02:00 UTC'] }, env).windows.map((w) => w.text), ['Sun 01:00-02:00 UTC'], '--window replaces CHARTCAST_WINDOW')
})

t.test('safety settings: defaults, and bad values refused', async (t) => {
  const o = resolveAgentOptions(base, {})
  t.match(o, { maxFailures: 3, retryFailed: false, windows: [], applyNow: false, maxBodyBytes: 10 * 1024 * 1024 })
  for (const [flags, message] of [
    [{ maxFailures: '0' }, /--max-failures "0" must be a whole number/],
    [{ maxFailures: 'x' }, /--max-failures/],
    [{ maxBody: 'lots' }, /--max-body "lots" must be a size/],
    [{ maxBody: '10' }, /--max-body/],
    [{ window: ['Sat 02:00-06:00 Mars/Olympus'] }, /not an IANA time zone/],
    [{ window: ['Caturday 02:00-06:00 UTC'] }, /unknown day/],
    [{ window: ['Sat 2am-6am UTC'] }, /not a time/],
    [{ window: ['Sat 02:00-02:00 UTC'] }, /empty/]
  ] as const) {
    t.throws(() => resolveAgentOptions({ ...base, ...flags } as Parameters<typeof resolveAgentOptions>[0], {}), { name: 'ConfigError', message })
  }
})

t.test('air-gapped: --from-file needs no server, channel or license', async (t) => {
  const o = resolveAgentOptions({ fromFile: 'spec.yaml', release: 'acme', namespace: 'acme' }, {})
  t.equal(o.fromFile, 'spec.yaml')
  t.equal(o.server, undefined)
})

t.test('invalid configurations are ConfigErrors with a clear message', async (t) => {
  const cases: Array<[Record<string, unknown>, Record<string, string>, RegExp]> = [
    [{ ...base, release: undefined }, {}, /--release .* is required/],
    [{ ...base, release: 'Bad_Name' }, {}, /not a valid release name/],
    [{ ...base, namespace: undefined }, {}, /--namespace .* is required/],
    [{ ...base, server: undefined }, {}, /--server .* is required unless --from-file/],
    [{ ...base, channel: undefined }, {}, /--channel .* is required/],
    [{ ...base, server: 'ftp://x' }, {}, /http\(s\) URL/],
    [{ ...base, server: 'https://user:pw@x' }, {}, /must not contain credentials/],
    [{ ...base, licenseFile: undefined }, {}, /license is required/],
    [{ ...base, applier: 'kubectl' }, {}, /--applier must be helm or dir/],
    [{ ...base, applier: 'dir' }, {}, /--out .* is required with --applier dir/],
    [{ ...base, interval: 'soon' }, {}, /--interval "soon"/],
    [{ ...base, interval: '500ms' }, {}, /at least 1s/],
    [{ ...base, fromFile: 'spec.yaml' }, {}, /either --server .* or --from-file/],
    [base, { CHARTCAST_ONCE: 'maybe' }, /CHARTCAST_ONCE must be true or false/],
    [base, { CHARTCAST_NO_REPORT: 'never' }, /CHARTCAST_NO_REPORT must be true or false/],
    [base, { CHARTCAST_HELM_TIMEOUT: '10' }, /CHARTCAST_HELM_TIMEOUT "10"/],
    [{ ...base, logLevel: 'loud' }, {}, /--log-level/]
  ]
  for (const [flags, env, message] of cases) {
    t.throws(() => resolveAgentOptions(flags, env), message, String(message))
    try {
      resolveAgentOptions(flags, env)
    } catch (err) {
      t.type(err, ConfigError)
    }
  }
})

t.test('a license may come from the CR instead of a file', async (t) => {
  t.doesNotThrow(() => resolveAgentOptions({ ...base, licenseFile: undefined, cr: 'cr.yaml' }, {}))
})

t.test('--no-report (or CHARTCAST_NO_REPORT) turns reporting off; it is on by default', async (t) => {
  t.equal(resolveAgentOptions(base, {}).report, true)
  t.equal(resolveAgentOptions({ ...base, noReport: true }, {}).report, false)
  t.equal(resolveAgentOptions(base, { CHARTCAST_NO_REPORT: 'true' }).report, false)
  t.equal(resolveAgentOptions(base, { CHARTCAST_NO_REPORT: 'off' }).report, true)
  t.equal(resolveAgentOptions({ ...base, noReport: true }, { CHARTCAST_NO_REPORT: 'false' }).report, false, 'the flag wins')
})

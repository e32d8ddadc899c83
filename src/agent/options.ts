import { parseDuration } from '../domain/duration.js'
import { ConfigError } from './errors.js'

/**
 * Agent configuration from flags and environment. This is the only agent module that reads
 * process.env (lint-enforced); everything downstream gets a plain AgentOptions.
 */
export interface AgentOptions {
  server?: string
  channel?: string
  licenseFile?: string
  release: string
  namespace: string
  userValues?: string
  cr?: string
  applier: 'helm' | 'dir'
  out?: string
  stateDir: string
  /** Fixed poll interval; when absent the server's hint is used, else one hour. */
  intervalMs?: number
  once: boolean
  fromFile?: string
  allowDowngrade: boolean
  /** Refuse every downgrade, a sanctioned rollback (`metadata.rollback: "true"`) too; set only when true. */
  neverDowngrade?: boolean
  /** Ask the server for this release version instead of the channel head. */
  pinVersion?: string
  /** Post a report to the server after every apply attempt (off with --no-report). */
  report: boolean
  helmBin: string
  helmTimeoutMs: number
  logLevel: string
}

/** Flag values as commander hands them over (all optional; env fills gaps). */
export interface AgentFlags {
  server?: string
  channel?: string
  licenseFile?: string
  release?: string
  namespace?: string
  userValues?: string
  cr?: string
  applier?: string
  out?: string
  stateDir?: string
  interval?: string
  once?: boolean
  fromFile?: string
  allowDowngrade?: boolean
  neverDowngrade?: boolean
  pinVersion?: string
  /** True for `--no-report` (commander hands that over as `report: false`; see src/cli/agent.ts). */
  noReport?: boolean
  logLevel?: string
}

type Env = Record<string, string | undefined>

/** Flag → environment variable. Also rendered into --help and docs/agent.md. */
export const ENV_VARS: Record<keyof AgentFlags, string> = {
  server: 'CHARTCAST_SERVER',
  channel: 'CHARTCAST_CHANNEL',
  licenseFile: 'CHARTCAST_LICENSE_FILE',
  release: 'CHARTCAST_RELEASE',
  namespace: 'CHARTCAST_NAMESPACE',
  userValues: 'CHARTCAST_USER_VALUES',
  cr: 'CHARTCAST_CR',
  applier: 'CHARTCAST_APPLIER',
  out: 'CHARTCAST_OUT',
  stateDir: 'CHARTCAST_STATE_DIR',
  interval: 'CHARTCAST_INTERVAL',
  once: 'CHARTCAST_ONCE',
  fromFile: 'CHARTCAST_FROM_FILE',
  allowDowngrade: 'CHARTCAST_ALLOW_DOWNGRADE',
  neverDowngrade: 'CHARTCAST_NEVER_DOWNGRADE',
  pinVersion: 'CHARTCAST_PIN_VERSION',
  noReport: 'CHARTCAST_NO_REPORT',
  logLevel: 'CHARTCAST_LOG_LEVEL'
}

export const DEFAULT_STATE_DIR = './.chartcast'
export const DEFAULT_HELM_TIMEOUT = '10m'

// Kubernetes object names: helm release names are DNS-1123 labels capped at 53 characters.
const RELEASE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

type BoolFlag = 'once' | 'allowDowngrade' | 'neverDowngrade' | 'noReport'

export function resolveAgentOptions (flags: AgentFlags, env: Env = process.env): AgentOptions {
  const str = (key: Exclude<keyof AgentFlags, BoolFlag>): string | undefined => {
    const flag = flags[key]
    if (flag !== undefined && flag !== '') return flag
    const fromEnv = env[ENV_VARS[key]]
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined
  }
  const bool = (key: BoolFlag): boolean => {
    if (flags[key] === true) return true
    const raw = env[ENV_VARS[key]]
    if (raw === undefined || raw === '') return false
    if (/^(1|true|yes|on)$/i.test(raw)) return true
    if (/^(0|false|no|off)$/i.test(raw)) return false
    throw new ConfigError(`${ENV_VARS[key]} must be true or false, got "${raw}"`)
  }

  const fromFile = str('fromFile')
  const server = str('server')
  const channel = str('channel')
  const release = str('release')
  const namespace = str('namespace')

  if (release === undefined) throw new ConfigError('--release (CHARTCAST_RELEASE) is required')
  if (!RELEASE_NAME.test(release) || release.length > 53) throw new ConfigError(`--release "${release}" is not a valid release name (lowercase letters, digits, "-", at most 53)`)
  if (namespace === undefined) throw new ConfigError('--namespace (CHARTCAST_NAMESPACE) is required')
  if (!NAMESPACE_NAME.test(namespace) || namespace.length > 63) throw new ConfigError(`--namespace "${namespace}" is not a valid namespace name`)

  if (fromFile !== undefined && server !== undefined) {
    throw new ConfigError('give either --server (online) or --from-file (air-gapped), not both')
  }
  if (fromFile === undefined) {
    if (server === undefined) throw new ConfigError('--server (CHARTCAST_SERVER) is required unless --from-file is given')
    if (channel === undefined) throw new ConfigError('--channel (CHARTCAST_CHANNEL) is required unless --from-file is given')
    let url: URL
    try {
      url = new URL(server)
    } catch {
      throw new ConfigError(`--server "${server}" is not a URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('--server must be an http(s) URL')
    if (url.username !== '' || url.password !== '') throw new ConfigError('--server must not contain credentials; the license is the credential')
    if (str('licenseFile') === undefined && str('cr') === undefined) {
      throw new ConfigError('a license is required: give --license-file, or a --cr whose spec.values.global.license is set')
    }
  }

  const applier = str('applier') ?? 'helm'
  if (applier !== 'helm' && applier !== 'dir') throw new ConfigError(`--applier must be helm or dir, got "${applier}"`)
  const out = str('out')
  if (applier === 'dir' && out === undefined) throw new ConfigError('--out (CHARTCAST_OUT) is required with --applier dir')

  const intervalText = str('interval')
  let intervalMs: number | undefined
  if (intervalText !== undefined) {
    const ms = parseDuration(intervalText)
    if (ms === null || ms < 1000) throw new ConfigError(`--interval "${intervalText}" must be a duration of at least 1s, like 30s, 15m or 1h`)
    intervalMs = ms
  }

  const helmTimeoutText = env.CHARTCAST_HELM_TIMEOUT !== undefined && env.CHARTCAST_HELM_TIMEOUT !== '' ? env.CHARTCAST_HELM_TIMEOUT : DEFAULT_HELM_TIMEOUT
  const helmTimeoutMs = parseDuration(helmTimeoutText)
  if (helmTimeoutMs === null || helmTimeoutMs < 1000) throw new ConfigError(`CHARTCAST_HELM_TIMEOUT "${helmTimeoutText}" must be a duration of at least 1s`)

  const neverDowngrade = bool('neverDowngrade')
  if (neverDowngrade && bool('allowDowngrade')) throw new ConfigError('give --allow-downgrade or --never-downgrade, not both')

  const logLevel = str('logLevel') ?? 'info'
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}`)

  return {
    server,
    channel,
    licenseFile: str('licenseFile'),
    release,
    namespace,
    userValues: str('userValues'),
    cr: str('cr'),
    applier,
    out,
    stateDir: str('stateDir') ?? DEFAULT_STATE_DIR,
    intervalMs,
    once: bool('once'),
    fromFile,
    allowDowngrade: bool('allowDowngrade'),
    ...(neverDowngrade && { neverDowngrade }),
    pinVersion: str('pinVersion'),
    report: !bool('noReport'),
    helmBin: env.HELM_BIN !== undefined && env.HELM_BIN !== '' ? env.HELM_BIN : 'helm',
    helmTimeoutMs,
    logLevel
  }
}

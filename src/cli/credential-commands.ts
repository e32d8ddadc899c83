/**
 * `token create`, `license keygen`, `license issue`: credentials for publishers and customers.
 * The signing tools (jose) are imported by the actions, so registering the commands loads none.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { InvalidArgumentError, Option, type Command } from 'commander'
import { DEFAULT_PUBLISHER_TOKEN_MAX_LIFETIME, loadConfig, type Config } from '../config.js'
import { formatDuration, parseDuration } from '../domain/duration.js'
import { isRole, ROLES, type Role } from '../domain/publisher-token.js'
import type { LicenseAlgorithm } from '../services/license-verifier.js'

const DEFAULT_TOKEN_LIFETIME_SECONDS = 30 * 86400

function duration (text: string): number {
  const ms = parseDuration(text)
  if (ms === null || ms < 1000) throw new InvalidArgumentError(`"${text}" is not a duration like 1y, 30d, 12h or 90m`)
  return Math.floor(ms / 1000)
}

function channelList (text: string): string[] {
  const list = text.split(',').map((c) => c.trim()).filter((c) => c !== '')
  if (list.length === 0) throw new InvalidArgumentError('name at least one channel, or "*" for all')
  return list
}

/** The token and its id: on stdout the token alone (so `> token.jwt` works), the id on stderr; or both as JSON. */
function printCredential (issued: { token: string, jti: string, exp: number }, json: boolean, what: string): void {
  const expiresAt = new Date(issued.exp * 1000).toISOString()
  if (json) {
    process.stdout.write(JSON.stringify({ token: issued.token, jti: issued.jti, expiresAt }) + '\n')
    return
  }
  process.stdout.write(issued.token + '\n')
  process.stderr.write(`${what} jti: ${issued.jti} (revoke by it), expires ${expiresAt}\n`)
}

/**
 * AUTH_SECRET, else the development secret the server generated under DATA_DIR. Not under
 * NODE_ENV=production, where the server uses no development secret: a token signed with one
 * would be refused by it.
 */
function authSecret (config: Config): string {
  if (config.authSecret !== null) return config.authSecret
  if (config.production) throw new Error('AUTH_SECRET is not set (with NODE_ENV=production no development secret is used)')
  const devSecret = path.join(config.dataDir, 'dev-keys', 'auth-secret')
  if (existsSync(devSecret)) return readFileSync(devSecret, 'utf8').trim()
  throw new Error('AUTH_SECRET is not set and no development secret exists yet (start the server once, or set AUTH_SECRET)')
}

export function registerCredentialCommands (program: Command): void {
  const token = program.command('token').description('Publisher API tokens')
  token.command('create')
    .description('Mint a publisher API token (HS256, signed with AUTH_SECRET) and print it; its jti, which revokes it, goes to stderr.')
    .requiredOption('--sub <name>', 'who the token is for (recorded in the audit log)')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`, (value: string) => {
      if (!isRole(value)) throw new InvalidArgumentError(`role must be one of ${ROLES.join(', ')}`)
      return value
    })
    .addOption(new Option('--expires <duration>', `lifetime, e.g. 12h or 30d; at most PUBLISHER_TOKEN_MAX_LIFETIME (${DEFAULT_PUBLISHER_TOKEN_MAX_LIFETIME} unless set), which also caps the default`)
      .argParser(duration).default(DEFAULT_TOKEN_LIFETIME_SECONDS, formatDuration(DEFAULT_TOKEN_LIFETIME_SECONDS * 1000)))
    .option('--json', 'print {"token", "jti", "expiresAt"} as JSON instead of the token alone')
    .action(async (opts: { sub: string, role: Role, expires: number, json?: boolean }, command: Command) => {
      const config = loadConfig()
      const max = config.publisherTokenMaxLifetimeSeconds
      let expiresIn = opts.expires
      if (expiresIn > max) {
        if (command.getOptionValueSource('expires') !== 'default') {
          throw new Error(`--expires ${formatDuration(expiresIn * 1000)} is beyond PUBLISHER_TOKEN_MAX_LIFETIME (${formatDuration(max * 1000)}): the server would refuse the token`)
        }
        expiresIn = max
      }
      const { issuePublisherToken } = await import('../token-tools.js')
      const issued = await issuePublisherToken(authSecret(config), { sub: opts.sub, role: opts.role, expiresIn })
      printCredential(issued, opts.json === true, 'token')
    })

  const license = program.command('license').description('Vendor license keys and customer licenses')
  license.command('keygen')
    .description('Create a vendor key pair: the private key signs licenses (keep it offline), the public key goes to the server (LICENSE_PUBLIC_KEYS).')
    .option('--alg <alg>', 'ES256, RS256 or EdDSA', 'ES256')
    .option('--out <dir>', 'directory to write license-private.pem and license-public.pem into', '.')
    .action(async (opts: { alg: string, out: string }) => {
      if (!['ES256', 'RS256', 'EdDSA'].includes(opts.alg)) throw new InvalidArgumentError('--alg must be ES256, RS256 or EdDSA')
      const { generateLicenseKeyPair } = await import('../license-tools.js')
      const pair = await generateLicenseKeyPair(opts.alg as LicenseAlgorithm)
      const privatePath = path.join(opts.out, 'license-private.pem')
      const publicPath = path.join(opts.out, 'license-public.pem')
      if (existsSync(privatePath)) throw new Error(`${privatePath} exists; refusing to overwrite a signing key`)
      writeFileSync(privatePath, pair.privatePem, { mode: 0o600 })
      writeFileSync(publicPath, pair.publicPem, { mode: 0o644 })
      process.stdout.write(`wrote ${privatePath} (keep secret) and ${publicPath} (give to the server)\n`)
    })

  /** The license's `wariness` claim: a number from 0 to 1, as the server requires. */
  function wariness (text: string): number {
    const value = Number(text)
    if (text.trim() === '' || !(value >= 0 && value <= 1)) throw new InvalidArgumentError('a number from 0 (first) to 1 (last)')
    return value
  }

  license.command('issue')
    .description('Sign a license for a customer deployment and print it; its jti, which revokes it, goes to stderr.')
    .requiredOption('--key <file>', 'the vendor private key (PEM)')
    .requiredOption('--sub <id>', 'the deployment id')
    .requiredOption('--channels <list>', 'comma-separated channels the license covers, or "*"', channelList)
    .requiredOption('--expires <duration>', 'lifetime, e.g. 1y or 90d', duration)
    .option('--channel <name>', 'default channel for the W&B-compatible endpoint (else the first of --channels)')
    .option('--jti <id>', 'license id (random when omitted); revoke by it')
    .option('--iss <issuer>', 'issuer claim (must match LICENSE_ISSUER when the server sets it)')
    .option('--aud <audience>', 'audience claim (must match LICENSE_AUDIENCE when the server sets it)')
    .option('--kid <id>', 'key id header, when the server holds a JWKS with several keys')
    .option('--wariness <number>', 'where the deployment stands in staged rollouts, 0 (first) to 1 (last); replaces its bucket', wariness)
    .option('--json', 'print {"token", "jti", "expiresAt"} as JSON instead of the license alone')
    .action(async (opts: { key: string, sub: string, channels: string[], expires: number, channel?: string, jti?: string, iss?: string, aud?: string, kid?: string, wariness?: number, json?: boolean }) => {
      let pem: string
      try {
        pem = readFileSync(opts.key, 'utf8')
      } catch {
        throw new Error(`cannot read private key ${opts.key}`)
      }
      const { issueLicenseWithId } = await import('../license-tools.js')
      const issued = await issueLicenseWithId(pem, {
        sub: opts.sub,
        channels: opts.channels,
        expiresIn: opts.expires,
        ...(opts.channel !== undefined && { channel: opts.channel }),
        ...(opts.jti !== undefined && { jti: opts.jti }),
        ...(opts.iss !== undefined && { iss: opts.iss }),
        ...(opts.aud !== undefined && { aud: opts.aud }),
        ...(opts.kid !== undefined && { kid: opts.kid }),
        ...(opts.wariness !== undefined && { extra: { wariness: opts.wariness } })
      })
      printCredential(issued, opts.json === true, 'license')
    })
}

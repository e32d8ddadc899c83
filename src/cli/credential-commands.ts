/** `token create`, `license keygen`, `license issue`: credentials for publishers and customers. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { InvalidArgumentError, type Command } from 'commander'
import { SignJWT } from 'jose'
import { loadConfig } from '../config.js'
import { parseDuration } from '../domain/duration.js'
import { generateLicenseKeyPair, issueLicense } from '../license-tools.js'
import { isRole, ROLES } from '../plugins/auth.js'
import type { LicenseAlgorithm } from '../services/license-verifier.js'

function duration (text: string): number {
  const ms = parseDuration(text)
  if (ms === null || ms < 1000) throw new InvalidArgumentError(`"${text}" is not a duration like 30d, 12h or 90m`)
  return Math.floor(ms / 1000)
}

function channelList (text: string): string[] {
  const list = text.split(',').map((c) => c.trim()).filter((c) => c !== '')
  if (list.length === 0) throw new InvalidArgumentError('name at least one channel, or "*" for all')
  return list
}

/** AUTH_SECRET, else the development secret the server generated under DATA_DIR. */
function authSecret (): string {
  const config = loadConfig()
  if (config.authSecret !== null) return config.authSecret
  const devSecret = path.join(config.dataDir, 'dev-keys', 'auth-secret')
  if (existsSync(devSecret)) return readFileSync(devSecret, 'utf8').trim()
  throw new Error('AUTH_SECRET is not set and no development secret exists yet (start the server once, or set AUTH_SECRET)')
}

export function registerCredentialCommands (program: Command): void {
  const token = program.command('token').description('Publisher API tokens')
  token.command('create')
    .description('Mint a publisher API token (HS256, signed with AUTH_SECRET) and print it.')
    .requiredOption('--sub <name>', 'who the token is for (recorded in the audit log)')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`, (value: string) => {
      if (!isRole(value)) throw new InvalidArgumentError(`role must be one of ${ROLES.join(', ')}`)
      return value
    })
    .option('--expires <duration>', 'lifetime, e.g. 30d', duration, 30 * 86400)
    .action(async (opts: { sub: string, role: string, expires: number }) => {
      const now = Math.floor(Date.now() / 1000)
      const jwt = await new SignJWT({ role: opts.role }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(opts.sub).setIssuedAt(now).setExpirationTime(now + opts.expires)
        .sign(new TextEncoder().encode(authSecret()))
      process.stdout.write(jwt + '\n')
    })

  const license = program.command('license').description('Vendor license keys and customer licenses')
  license.command('keygen')
    .description('Create a vendor key pair: the private key signs licenses (keep it offline), the public key goes to the server (LICENSE_PUBLIC_KEYS).')
    .option('--alg <alg>', 'ES256, RS256 or EdDSA', 'ES256')
    .option('--out <dir>', 'directory to write license-private.pem and license-public.pem into', '.')
    .action(async (opts: { alg: string, out: string }) => {
      if (!['ES256', 'RS256', 'EdDSA'].includes(opts.alg)) throw new InvalidArgumentError('--alg must be ES256, RS256 or EdDSA')
      const pair = await generateLicenseKeyPair(opts.alg as LicenseAlgorithm)
      const privatePath = path.join(opts.out, 'license-private.pem')
      const publicPath = path.join(opts.out, 'license-public.pem')
      if (existsSync(privatePath)) throw new Error(`${privatePath} exists; refusing to overwrite a signing key`)
      writeFileSync(privatePath, pair.privatePem, { mode: 0o600 })
      writeFileSync(publicPath, pair.publicPem, { mode: 0o644 })
      process.stdout.write(`wrote ${privatePath} (keep secret) and ${publicPath} (give to the server)\n`)
    })

  license.command('issue')
    .description('Sign a license for a customer deployment and print it.')
    .requiredOption('--key <file>', 'the vendor private key (PEM)')
    .requiredOption('--sub <id>', 'the deployment id')
    .requiredOption('--channels <list>', 'comma-separated channels the license covers, or "*"', channelList)
    .requiredOption('--expires <duration>', 'lifetime, e.g. 365d', duration)
    .option('--channel <name>', 'default channel for the W&B-compatible endpoint (else the first of --channels)')
    .option('--jti <id>', 'license id (random when omitted); revoke by it')
    .option('--iss <issuer>', 'issuer claim (must match LICENSE_ISSUER when the server sets it)')
    .option('--aud <audience>', 'audience claim (must match LICENSE_AUDIENCE when the server sets it)')
    .option('--kid <id>', 'key id header, when the server holds a JWKS with several keys')
    .action(async (opts: { key: string, sub: string, channels: string[], expires: number, channel?: string, jti?: string, iss?: string, aud?: string, kid?: string }) => {
      let pem: string
      try {
        pem = readFileSync(opts.key, 'utf8')
      } catch {
        throw new Error(`cannot read private key ${opts.key}`)
      }
      const jwt = await issueLicense(pem, {
        sub: opts.sub,
        channels: opts.channels,
        expiresIn: opts.expires,
        ...(opts.channel !== undefined && { channel: opts.channel }),
        ...(opts.jti !== undefined && { jti: opts.jti }),
        ...(opts.iss !== undefined && { iss: opts.iss }),
        ...(opts.aud !== undefined && { aud: opts.aud }),
        ...(opts.kid !== undefined && { kid: opts.kid })
      })
      process.stdout.write(jwt + '\n')
    })
}

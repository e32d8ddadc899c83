/**
 * First-start convenience: with no license keys or no AUTH_SECRET configured, generate
 * development ones under DATA_DIR (once; reused afterwards) so `npm start` works on a fresh
 * clone. The server says so loudly: these must be replaced in production, and with
 * NODE_ENV=production it refuses to start without them instead (missingProductionKeys).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import lockfile from 'proper-lockfile'
import type { Config } from './config.js'
import { generateLicenseKeyPair } from './license-tools.js'

export interface DevMaterial {
  licensePublicKeys: string[] | null
  licensePrivateKey: string | null
  authSecret: string | null
  /** Made by this call (true) rather than found from an earlier start (false). */
  generated: { licenseKeys: boolean, authSecret: boolean }
}

/** The variables a production server must have, among those not set. */
export function missingProductionKeys (config: Pick<Config, 'licensePublicKeys' | 'authSecret'>): string[] {
  return [
    ...(config.licensePublicKeys.length === 0 ? ['LICENSE_PUBLIC_KEYS'] : []),
    ...(config.authSecret === null ? ['AUTH_SECRET'] : [])
  ]
}

/** Written whole or not at all, owner-only: a crash mid-write never leaves half a key. */
function writeOwnerOnly (file: string, content: string): void {
  const partial = `${file}.${process.pid}.tmp`
  writeFileSync(partial, content, { mode: 0o600 })
  renameSync(partial, file)
}

export async function ensureDevMaterial (dataDir: string, needKeys: boolean, needSecret: boolean): Promise<DevMaterial> {
  const dir = path.join(dataDir, 'dev-keys')
  const result: DevMaterial = { licensePublicKeys: null, licensePrivateKey: null, authSecret: null, generated: { licenseKeys: false, authSecret: false } }
  if (!needKeys && !needSecret) return result
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // Replicas on PostgreSQL may share a DATA_DIR (the embedded database's own lock does not
  // cover them): one generates while the others wait, then all read the same pair and secret.
  const unlock = await lockfile.lock(dir, { lockfilePath: path.join(dir, '.generating.lock'), retries: { retries: 100, minTimeout: 50, maxTimeout: 200 } })
  try {
    if (needKeys) {
      const privatePath = path.join(dir, 'license-private.pem')
      const publicPath = path.join(dir, 'license-public.pem')
      if (!existsSync(privatePath) || !existsSync(publicPath)) {
        const pair = await generateLicenseKeyPair('ES256')
        writeOwnerOnly(privatePath, pair.privatePem)
        // Owner-only too: only the server reads it, and DATA_DIR is the server's alone.
        writeOwnerOnly(publicPath, pair.publicPem)
        result.generated.licenseKeys = true
      }
      result.licensePublicKeys = [publicPath]
      result.licensePrivateKey = privatePath
    }
    if (needSecret) {
      const secretPath = path.join(dir, 'auth-secret')
      if (!existsSync(secretPath)) {
        writeOwnerOnly(secretPath, randomBytes(32).toString('base64url'))
        result.generated.authSecret = true
      }
      result.authSecret = readFileSync(secretPath, 'utf8').trim()
    }
  } finally {
    await unlock()
  }
  return result
}

export interface DevSigningKeys {
  /** For SPEC_SIGNING_KEYS. */
  onlineKey: string
  /** For SPEC_KEYSET. */
  chain: string
  /** The trust root a development agent is given (--trust-root). */
  rootPublicKey: string
  generated: boolean
}

/**
 * Development spec-signing keys under DATA_DIR/dev-keys/spec-signing (the layout of
 * `chartcast keys init`), made once and reused; an expired keyset is renewed with the root kept
 * there. A production server never calls this: its root key is offline (docs/signing.md).
 */
export async function ensureDevSigningKeys (dataDir: string): Promise<DevSigningKeys> {
  const parent = path.join(dataDir, 'dev-keys')
  const dir = path.join(parent, 'spec-signing')
  mkdirSync(parent, { recursive: true, mode: 0o700 })
  const { initKeyDir, rotateKeyDir, readChainFile, KEY_FILES } = await import('./keyset-tools.js')
  const unlock = await lockfile.lock(parent, { lockfilePath: path.join(parent, '.generating.lock'), retries: { retries: 100, minTimeout: 50, maxTimeout: 200 } })
  let generated = false
  try {
    const chainFile = path.join(dir, KEY_FILES.chain)
    if (!existsSync(chainFile)) {
      // A directory without its chain is an interrupted first start: start it again.
      rmSync(dir, { recursive: true, force: true })
      initKeyDir(dir)
      generated = true
    } else {
      const chain = readChainFile(chainFile)
      if (Date.parse(chain[chain.length - 1]!.signed.expires) <= Date.now()) rotateKeyDir(dir, {})
    }
    return { onlineKey: path.join(dir, KEY_FILES.online(1)), chain: chainFile, rootPublicKey: path.join(dir, KEY_FILES.rootPublic), generated }
  } finally {
    await unlock()
  }
}

/**
 * First-start convenience: with no license keys or no AUTH_SECRET configured, generate
 * development ones under DATA_DIR (once; reused afterwards) so `npm start` works on a fresh
 * clone. The server says so loudly: these must be replaced in production.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { generateLicenseKeyPair } from './license-tools.js'

export interface DevMaterial {
  licensePublicKeys: string[] | null
  licensePrivateKey: string | null
  authSecret: string | null
}

export async function ensureDevMaterial (dataDir: string, needKeys: boolean, needSecret: boolean): Promise<DevMaterial> {
  const dir = path.join(dataDir, 'dev-keys')
  const result: DevMaterial = { licensePublicKeys: null, licensePrivateKey: null, authSecret: null }
  if (!needKeys && !needSecret) return result
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  if (needKeys) {
    const privatePath = path.join(dir, 'license-private.pem')
    const publicPath = path.join(dir, 'license-public.pem')
    if (!existsSync(privatePath) || !existsSync(publicPath)) {
      const pair = await generateLicenseKeyPair('ES256')
      writeFileSync(privatePath, pair.privatePem, { mode: 0o600 })
      writeFileSync(publicPath, pair.publicPem, { mode: 0o644 })
    }
    result.licensePublicKeys = [publicPath]
    result.licensePrivateKey = privatePath
  }
  if (needSecret) {
    const secretPath = path.join(dir, 'auth-secret')
    if (!existsSync(secretPath)) writeFileSync(secretPath, randomBytes(32).toString('base64url'), { mode: 0o600 })
    result.authSecret = readFileSync(secretPath, 'utf8').trim()
  }
  return result
}

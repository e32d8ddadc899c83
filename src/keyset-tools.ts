/**
 * Vendor-side keyset tooling (used by `chartcast keys`, development keys and the tests): Ed25519
 * key pairs, the first keyset, and the next keyset of a rotation. File handling is the CLI's.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { keysetKeyOf, signKeyset, type Keyset, type KeysetKey } from './domain/keyset.js'

/** A keyset lives a year unless told otherwise: rotating it is a deliberate, offline act. */
export const DEFAULT_KEYSET_TTL_MS = 365 * 86_400_000

export interface Ed25519Pair {
  privateKey: KeyObject
  publicKey: KeyObject
  privatePem: string
  publicPem: string
  kid: string
}

export function generateEd25519Pair (): Ed25519Pair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privateKey,
    publicKey,
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    kid: keysetKeyOf(publicKey).kid
  }
}

function expiresText (nowMs: number, ttlMs: number): string {
  // Whole seconds: RFC 3339 without fractions reads the same in every tool.
  return new Date(Math.floor((nowMs + ttlMs) / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

export interface InitialKeys {
  root: Ed25519Pair
  online: Ed25519Pair
  /** Keyset version 1, signed by the root. */
  keyset: Keyset
}

export function initKeys (options: { ttlMs?: number, nowMs?: number } = {}): InitialKeys {
  const root = generateEd25519Pair()
  const online = generateEd25519Pair()
  const keyset = signKeyset({
    version: 1,
    expires: expiresText(options.nowMs ?? Date.now(), options.ttlMs ?? DEFAULT_KEYSET_TTL_MS),
    roots: [keysetKeyOf(root.publicKey)],
    keys: [keysetKeyOf(online.publicKey)]
  }, [root.privateKey])
  return { root, online, keyset }
}

export interface Rotation {
  /** Online public keys to add. */
  add?: KeyObject[]
  /** kids of online keys to drop. */
  remove?: string[]
  /** A new root: the keyset is then signed by the current root(s) and the new one, and names only the new one. */
  newRoot?: KeyObject
  ttlMs?: number
  nowMs?: number
}

/**
 * Keyset N+1 from keyset N, signed by `rootKeys` (the private keys of N's roots; one is enough).
 * A root rotation signs with the old root and the new one, so an agent that trusts the old root
 * follows the chain (TUF 5.3.4).
 */
export function rotateKeyset (current: Keyset, rootKeys: KeyObject[], rotation: Rotation): Keyset {
  const currentRootKids = new Set(current.signed.roots.map((r) => r.kid))
  const signers = rootKeys.filter((key) => currentRootKids.has(keysetKeyOf(key).kid))
  if (signers.length === 0) throw new Error(`no root key given is a root of keyset ${current.signed.version}`)
  const removed = new Set(rotation.remove ?? [])
  for (const kid of removed) if (!current.signed.keys.some((k) => k.kid === kid)) throw new Error(`kid ${kid} is not an online key of keyset ${current.signed.version}`)
  const keys: KeysetKey[] = current.signed.keys.filter((k) => !removed.has(k.kid))
  for (const key of rotation.add ?? []) {
    const entry = keysetKeyOf(key)
    if (!keys.some((k) => k.kid === entry.kid)) keys.push(entry)
  }
  if (keys.length === 0) throw new Error('the keyset would hold no online key')
  const roots = rotation.newRoot === undefined ? current.signed.roots : [keysetKeyOf(rotation.newRoot)]
  return signKeyset({
    version: current.signed.version + 1,
    expires: expiresText(rotation.nowMs ?? Date.now(), rotation.ttlMs ?? DEFAULT_KEYSET_TTL_MS),
    roots,
    keys
  }, rotation.newRoot === undefined ? signers : [...signers, rotation.newRoot])
}

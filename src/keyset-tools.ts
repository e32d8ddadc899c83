/**
 * Vendor-side keyset tooling (used by `chartcast keys`, development keys and the tests): Ed25519
 * key pairs, the first keyset, and the next keyset of a rotation. File handling is the CLI's.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { keysetKeyOf, parseKeysetChain, readEd25519PrivateKey, signKeyset, type Keyset, type KeysetKey } from './domain/keyset.js'

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

/**
 * The key directory `chartcast keys init` writes and `chartcast keys rotate` updates:
 *
 *   root-private.pem         the root key: move it offline once the ceremony is done (0600)
 *   root-public.pem          the trust root customers' agents get (--trust-root)
 *   online-N-private.pem     online keys, for SPEC_SIGNING_KEYS (0600)
 *   keyset-chain.json        every keyset, version 1 first, for SPEC_KEYSET
 */
export const KEY_FILES = {
  rootPrivate: 'root-private.pem',
  rootPublic: 'root-public.pem',
  chain: 'keyset-chain.json',
  online: (n: number): string => `online-${n}-private.pem`
} as const

/** Written aside and renamed over the old file: a crash never leaves half a key or half a chain. */
function writeWhole (file: string, content: string, mode: number): void {
  const partial = `${file}.${process.pid}.tmp`
  writeFileSync(partial, content, { mode, flag: 'wx' })
  chmodSync(partial, mode)
  renameSync(partial, file)
}

function writeChain (dir: string, chain: Keyset[]): void {
  writeWhole(path.join(dir, KEY_FILES.chain), JSON.stringify({ keysets: chain }, null, 2) + '\n', 0o644)
}

export function readChainFile (file: string): Keyset[] {
  return parseKeysetChain(JSON.parse(readFileSync(file, 'utf8'))).sort((a, b) => a.signed.version - b.signed.version)
}

function nextOnlineNumber (dir: string): number {
  let n = 1
  while (existsSync(path.join(dir, KEY_FILES.online(n)))) n++
  return n
}

export interface KeyDirResult {
  keyset: Keyset
  /** Files written, relative to the directory. */
  written: string[]
}

/** `keys init`: a new root and first online key, keyset 1. Refuses a directory that already holds keys. */
export function initKeyDir (dir: string, options: { ttlMs?: number, nowMs?: number } = {}): KeyDirResult {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  for (const name of [KEY_FILES.rootPrivate, KEY_FILES.chain, KEY_FILES.online(1)]) {
    if (existsSync(path.join(dir, name))) throw new Error(`${path.join(dir, name)} exists: keys init never overwrites keys (use keys rotate)`)
  }
  const { root, online, keyset } = initKeys(options)
  writeWhole(path.join(dir, KEY_FILES.rootPrivate), root.privatePem, 0o600)
  writeWhole(path.join(dir, KEY_FILES.rootPublic), root.publicPem, 0o644)
  writeWhole(path.join(dir, KEY_FILES.online(1)), online.privatePem, 0o600)
  writeChain(dir, [keyset])
  return { keyset, written: [KEY_FILES.rootPrivate, KEY_FILES.rootPublic, KEY_FILES.online(1), KEY_FILES.chain] }
}

export interface KeyDirRotation {
  /** The current root's private key file (default DIR/root-private.pem; it is usually kept offline). */
  rootKeyFile?: string
  /** Generate this many new online keys and add them. */
  addOnline?: number
  /** Drop these online keys (kids) from the keyset. */
  removeOnline?: string[]
  /** Drop every current online key (use with addOnline). */
  replaceOnline?: boolean
  /** Generate a new root: keyset N+1 is signed by the old and the new root. */
  rotateRoot?: boolean
  ttlMs?: number
  nowMs?: number
}

/**
 * `keys rotate`: keyset N+1 in DIR/keyset-chain.json. With rotateRoot, the new root replaces
 * DIR/root-private.pem and root-public.pem; the old root's files are kept aside as
 * root-private.retired-vN.pem (destroy it once every agent has followed, docs/signing.md).
 */
export function rotateKeyDir (dir: string, rotation: KeyDirRotation): KeyDirResult {
  const chain = readChainFile(path.join(dir, KEY_FILES.chain))
  const current = chain[chain.length - 1]!
  const rootKey = readEd25519PrivateKey(readFileSync(rotation.rootKeyFile ?? path.join(dir, KEY_FILES.rootPrivate), 'utf8'))
  // Checked before any key is generated, so a wrong root leaves the directory as it was.
  if (!current.signed.roots.some((r) => r.kid === keysetKeyOf(rootKey).kid)) throw new Error(`no root key given is a root of keyset ${current.signed.version}`)
  const written: string[] = []
  const add: KeyObject[] = []
  for (let i = 0; i < (rotation.addOnline ?? 0); i++) {
    const pair = generateEd25519Pair()
    const name = KEY_FILES.online(nextOnlineNumber(dir))
    writeWhole(path.join(dir, name), pair.privatePem, 0o600)
    written.push(name)
    add.push(pair.publicKey)
  }
  const remove = rotation.replaceOnline === true ? current.signed.keys.map((k) => k.kid) : (rotation.removeOnline ?? [])
  const newRoot = rotation.rotateRoot === true ? generateEd25519Pair() : undefined
  const next = rotateKeyset(current, [rootKey], { add, remove, ...(newRoot !== undefined && { newRoot: newRoot.privateKey }), ...(rotation.ttlMs !== undefined && { ttlMs: rotation.ttlMs }), ...(rotation.nowMs !== undefined && { nowMs: rotation.nowMs }) })
  if (newRoot !== undefined) {
    const retired = `root-private.retired-v${current.signed.version}.pem`
    writeWhole(path.join(dir, retired), rootKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600)
    writeWhole(path.join(dir, KEY_FILES.rootPrivate), newRoot.privatePem, 0o600)
    writeWhole(path.join(dir, KEY_FILES.rootPublic), newRoot.publicPem, 0o644)
    written.push(retired, KEY_FILES.rootPrivate, KEY_FILES.rootPublic)
  }
  writeChain(dir, [...chain, next])
  written.push(KEY_FILES.chain)
  return { keyset: next, written }
}

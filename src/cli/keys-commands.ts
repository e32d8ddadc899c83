/**
 * `keys init`, `keys rotate`: the vendor's spec-signing keys (docs/signing.md). Run them on the
 * offline machine that holds the root key. The key tooling is imported by the actions, so
 * registering the commands loads none of it.
 */
import { InvalidArgumentError, Option, type Command } from 'commander'
import path from 'node:path'
import { parseDuration } from '../domain/duration.js'

function duration (text: string): number {
  const ms = parseDuration(text)
  if (ms === null || ms < 86_400_000) throw new InvalidArgumentError(`"${text}" is not a duration of at least a day, like 90d or 365d`)
  return ms
}

/** A keyset's default lifetime, in the form --expires takes (help shows this text, not milliseconds). */
const DEFAULT_KEYSET_LIFETIME = '365d'

function expiresOption (description: string): Option {
  return new Option('--expires <duration>', description).argParser(duration).default(duration(DEFAULT_KEYSET_LIFETIME), DEFAULT_KEYSET_LIFETIME)
}

function count (text: string): number {
  if (!/^[1-9]\d?$/.test(text)) throw new InvalidArgumentError('a number of keys from 1 to 99')
  return Number(text)
}

function collect (value: string, previous: string[]): string[] {
  return [...previous, value]
}

export function registerKeysCommands (program: Command): void {
  const keys = program.command('keys').description('Spec-signing keys: an offline root key and the online keys it vouches for (docs/signing.md)')

  keys.command('init')
    .description('Create a root key, a first online key and keyset 1 signed by the root, in a new directory.')
    .requiredOption('--out <dir>', 'directory to write the keys into (created; private keys are 0600)')
    .addOption(expiresOption('how long keyset 1 is valid'))
    .action(async (opts: { out: string, expires: number }) => {
      const { initKeyDir, KEY_FILES } = await import('../keyset-tools.js')
      const result = initKeyDir(opts.out, { ttlMs: opts.expires })
      const dir = path.resolve(opts.out)
      process.stdout.write([
        `keyset ${result.keyset.signed.version} written to ${path.join(dir, KEY_FILES.chain)}, expires ${result.keyset.signed.expires}`,
        `root key ${result.keyset.signed.roots[0]!.kid}: ${path.join(dir, KEY_FILES.rootPrivate)} (move it offline now)`,
        `online key ${result.keyset.signed.keys[0]!.kid}: ${path.join(dir, KEY_FILES.online(1))}`,
        '',
        'On the server:',
        `  SPEC_SIGNING_KEYS=${path.join(dir, KEY_FILES.online(1))}`,
        `  SPEC_KEYSET=${path.join(dir, KEY_FILES.chain)}`,
        `Ship to customers (agent --trust-root): ${path.join(dir, KEY_FILES.rootPublic)}`,
        ''
      ].join('\n'))
    })

  keys.command('rotate')
    .description('Write keyset N+1, signed by the root: add or replace online keys, extend the expiry, or rotate the root itself (then signed by the old and the new root).')
    .requiredOption('--dir <dir>', 'the key directory of keys init')
    .option('--root-key <file>', 'the current root private key (default: DIR/root-private.pem)')
    .option('--add-online <n>', 'generate and add this many online keys', count)
    .option('--remove-online <kid>', 'drop this online key (repeatable)', collect, [])
    .option('--replace-online', 'drop every current online key and add one new key (or --add-online N)')
    .option('--rotate-root', 'generate a new root key; the old one is kept aside as root-private.retired-vN.pem')
    .addOption(expiresOption('how long the new keyset is valid'))
    .action(async (opts: { dir: string, rootKey?: string, addOnline?: number, removeOnline: string[], replaceOnline?: boolean, rotateRoot?: boolean, expires: number }) => {
      const { rotateKeyDir } = await import('../keyset-tools.js')
      const addOnline = opts.addOnline ?? (opts.replaceOnline === true ? 1 : 0)
      const result = rotateKeyDir(opts.dir, {
        ...(opts.rootKey !== undefined && { rootKeyFile: opts.rootKey }),
        addOnline,
        removeOnline: opts.removeOnline,
        replaceOnline: opts.replaceOnline === true,
        rotateRoot: opts.rotateRoot === true,
        ttlMs: opts.expires
      })
      const { signed } = result.keyset
      process.stdout.write([
        `keyset ${signed.version} written, expires ${signed.expires}, signed by ${result.keyset.signatures.map((s) => s.kid).join(' and ')}`,
        `online keys: ${signed.keys.map((k) => k.kid).join(', ')}`,
        `files written: ${result.written.join(', ')}`,
        'Deploy keyset-chain.json (SPEC_KEYSET) and the online private keys of this keyset (SPEC_SIGNING_KEYS) to every replica.',
        ...(opts.rotateRoot === true ? ['New root: ship root-public.pem to new customers; agents that trust the old root follow the chain.'] : []),
        ''
      ].join('\n'))
    })
}

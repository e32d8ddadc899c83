/** The chartcast command reads `.env` from its working directory, the real environment winning. */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { jwtVerify } from 'jose'
import { runCli } from '../helpers/cli.js'

const scratch = (t: { teardown (fn: () => void): void }): string => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-dotenv-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
const secret = (): string => randomBytes(32).toString('hex')
const verifies = async (token: string, key: string): Promise<boolean> => await jwtVerify(token, new TextEncoder().encode(key)).then(() => true, () => false)

t.test('the file fills what the environment leaves unset', async (t) => {
  const dir = scratch(t)
  const fromFile = secret()
  writeFileSync(path.join(dir, '.env'), `AUTH_SECRET=${fromFile}\n`)
  const result = await runCli(['token', 'create', '--sub', 'ci', '--role', 'reader'], {}, 60_000, dir)
  t.equal(result.code, 0, result.stderr)
  t.ok(await verifies(result.stdout.trim(), fromFile), 'signed with the secret from .env')
})

t.test('the real environment wins over the file', async (t) => {
  const dir = scratch(t)
  const fromEnv = secret()
  writeFileSync(path.join(dir, '.env'), `AUTH_SECRET=${secret()}\n`)
  const result = await runCli(['token', 'create', '--sub', 'ci', '--role', 'reader'], { AUTH_SECRET: fromEnv }, 60_000, dir)
  t.equal(result.code, 0, result.stderr)
  t.ok(await verifies(result.stdout.trim(), fromEnv), 'signed with the secret from the environment')
})

t.test('no .env is fine', async (t) => {
  const result = await runCli(['token', 'create', '--sub', 'ci', '--role', 'reader'], { AUTH_SECRET: secret() }, 60_000, scratch(t))
  t.equal(result.code, 0, result.stderr)
})

t.test('serve reads it too, and a malformed file stops a command with the line', async (t) => {
  const dir = scratch(t)
  writeFileSync(path.join(dir, '.env'), 'PORT=eighty\n')
  const badValue = await runCli(['serve'], {}, 60_000, dir)
  t.not(badValue.code, 0)
  t.match(badValue.stderr, /PORT must be a whole number, got "eighty"/, 'the value came from .env')
  writeFileSync(path.join(dir, '.env'), `# settings\nAUTH_SECRET ${secret()}\n`)
  for (const args of [['serve'], ['migrate'], ['token', 'create', '--sub', 'ci', '--role', 'reader']]) {
    const result = await runCli(args, {}, 60_000, dir)
    t.not(result.code, 0, args.join(' '))
    t.match(result.stderr, 'chartcast: .env line 2: expected NAME=value', args.join(' '))
  }
})

t.test('the agent does not read the server\'s .env', async (t) => {
  const dir = scratch(t)
  writeFileSync(path.join(dir, '.env'), 'this is not an env file\n')
  // Missing options: the agent's own complaint, not one about the .env file it must not read.
  const result = await runCli(['agent'], {}, 60_000, dir)
  t.match(result.stderr, /--release \(CHARTCAST_RELEASE\) is required/)
  t.notMatch(result.stderr, /\.env/)
})

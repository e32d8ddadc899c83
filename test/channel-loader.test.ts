import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { readChannelDir, readStartupChannelDir } from '../src/channel-loader.js'
import { ChannelFileError } from '../src/domain/channel-file.js'
import { buildTestServer, testDrivers, type TestServer } from './helpers/server.js'

function scratch (t: { teardown (fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'chartcast-channels-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text)
  return dir
}

t.test('reads every .yaml and .yml file, sorted by file name', async (t) => {
  const dir = scratch(t, {
    'stable.yaml': 'name: stable\ndescription: Production\naccepts: ">=1.0.0"\npollInterval: 1h\nvalues:\n  replicas: 3\n',
    'beta.yml': 'name: beta\n',
    'README.md': '# not a channel',
    'notes.txt': 'name: ignored\n'
  })
  const defs = readChannelDir(dir)
  t.same(defs.map((d) => d.name), ['beta', 'stable'])
  t.same(defs[1], { name: 'stable', description: 'Production', values: { replicas: 3 }, accepts: '>=1.0.0', pollInterval: '1h', file: 'stable.yaml' })
  t.equal(defs[0]?.file, 'beta.yml', 'each definition names its file')
})

t.test('an empty directory gives no channels', async (t) => {
  t.same(readChannelDir(scratch(t, {})), [])
})

t.test('the shipped channels directory loads', async (t) => {
  const defs = readChannelDir(path.resolve('channels'))
  t.same(defs.map((d) => d.name).sort(), ['beta', 'dev', 'stable'])
})

t.test('a broken file stops the load with a message naming the file and the line', async (t) => {
  const dir = scratch(t, {
    'good.yaml': 'name: good\n',
    'stable.yaml': 'name: stable\nvalues:\n  a: 1\n  a: 2\n'
  })
  const error = t.throws(() => readChannelDir(dir)) as ChannelFileError
  t.ok(error instanceof ChannelFileError)
  t.equal(error.file, path.join(dir, 'stable.yaml'))
  t.match(error.message, `${path.join(dir, 'stable.yaml')}: line 4, column 3: `)
  t.match(error.message, /unique/i)
})

t.test('a YAML syntax error names file and line', async (t) => {
  const dir = scratch(t, { 'stable.yaml': 'name: stable\ndescription: "unterminated\n' })
  t.throws(() => readChannelDir(dir), { name: 'ChannelFileError', message: /stable\.yaml: line \d+, column \d+: / })
})

t.test('a schema problem names the file and the field', async (t) => {
  const dir = scratch(t, { 'stable.yaml': 'name: stable\npollInterval: 5\n' })
  t.throws(() => readChannelDir(dir), { name: 'ChannelFileError', message: /stable\.yaml: pollInterval/ })
})

t.test('a file whose name differs from its channel name is refused', async (t) => {
  const dir = scratch(t, { 'prod.yaml': 'name: stable\n' })
  t.throws(() => readChannelDir(dir), { name: 'ChannelFileError', message: /prod\.yaml: name "stable" does not match/ })
})

t.test('a misspelt key in a channel file is refused as unknown, naming the file and the intended key', async (t) => {
  const dir = scratch(t, { 'beta.yaml': 'name: beta\n', 'stable.yaml': 'name: stable\nacepts: ">=1.0.0"\n' })
  const error = t.throws(() => readChannelDir(dir)) as ChannelFileError
  t.equal(error.message, `${path.join(dir, 'stable.yaml')}: unknown key "acepts"; did you mean "accepts"? allowed: name, description, values, accepts, pollInterval`)
})

t.test('two files defining one channel are refused, naming both', async (t) => {
  const dir = scratch(t, { 'stable.yaml': 'name: stable\n', 'stable.yml': 'name: stable\n' })
  const error = t.throws(() => readChannelDir(dir)) as ChannelFileError
  t.ok(error instanceof ChannelFileError)
  t.match(error.message, /stable\.yml: channel "stable" is also defined in .*stable\.yaml/)
})

t.test('nothing is returned when any file is broken (no half load)', async (t) => {
  const dir = scratch(t, { 'a.yaml': 'name: a\n', 'b.yaml': 'name: b\nbogus: 1\n', 'c.yaml': 'name: c\n' })
  let result: unknown = 'unset'
  try {
    result = readChannelDir(dir)
  } catch (error) {
    t.ok(error instanceof ChannelFileError)
  }
  t.equal(result, 'unset')
})

t.test('a missing directory is refused with a message naming it', async (t) => {
  const dir = path.join(scratch(t, {}), 'absent')
  t.throws(() => readChannelDir(dir), { name: 'ChannelFileError', message: `${dir}: channels directory cannot be read` })
})

t.test('at start-up, a CHANNELS_DIR that was set but does not exist is an error naming it', async (t) => {
  const dir = path.join(scratch(t, {}), 'absent')
  t.throws(() => readStartupChannelDir(dir, true), { name: 'ChannelFileError', message: `${dir}: CHANNELS_DIR does not exist` })
})

t.test('at start-up, the default channels directory missing means no channel files', async (t) => {
  t.equal(readStartupChannelDir(path.join(scratch(t, {}), 'absent'), false), null)
})

t.test('at start-up, an existing directory is read whether CHANNELS_DIR was set or not', async (t) => {
  const dir = scratch(t, { 'stable.yaml': 'name: stable\n' })
  t.same(readStartupChannelDir(dir, false)?.map((d) => d.name), ['stable'])
  t.same(readStartupChannelDir(dir, true)?.map((d) => d.name), ['stable'])
})

t.test('a file in place of the directory is refused', async (t) => {
  const dir = scratch(t, { 'file.yaml': 'name: file\n' })
  t.throws(() => readChannelDir(path.join(dir, 'file.yaml')), { name: 'ChannelFileError', message: /is not a directory/ })
})

t.test('an unreadable entry (a directory named like a channel file) is refused, naming it', async (t) => {
  const dir = scratch(t, { 'stable.yaml': 'name: stable\n' })
  mkdirSync(path.join(dir, 'sub.yaml'))
  t.throws(() => readChannelDir(dir), { name: 'ChannelFileError', message: `${path.join(dir, 'sub.yaml')}: cannot be read (EISDIR)` })
})

for (const driver of testDrivers()) {
  t.test(`${driver}: start-up sync`, async (t) => {
    t.test('start-up syncs the channel files into the database, idempotently', async (t) => {
      const dir = scratch(t, { 'stable.yaml': 'name: stable\nvalues:\n  replicas: 3\npollInterval: 1h\n', 'beta.yaml': 'name: beta\naccepts: ">=1.0.0-0"\n' })
      const s = await buildTestServer(t, { driver, env: { CHANNELS_DIR: dir } })
      const channels = (await s.app.inject({ url: '/channels', headers: { authorization: `Bearer ${s.tokens.reader}` } })).json().channels
      t.same(channels.map((c: { name: string }) => c.name), ['beta', 'stable'])
      t.match(channels[1], { values: { replicas: 3 }, pollInterval: '1h', accepts: null })
      const audit = async (server: TestServer) => (await server.app.inject({ url: '/audit', headers: { authorization: `Bearer ${server.tokens.admin}` } })).json().entries as Array<{ action: string, actor: string }>
      const first = await audit(s)
      t.same(first.map((e) => [e.action, e.actor]), [['channel.sync', 'sync:startup'], ['channel.sync', 'sync:startup']])
      t.same(channels.map((c: { managedBy: unknown }) => c.managedBy), [{ file: 'beta.yaml' }, { file: 'stable.yaml' }])
      const again = await buildTestServer(t, { driver, database: s.database, env: { CHANNELS_DIR: dir } })
      t.equal((await audit(again)).length, first.length, 'a second start changes nothing')
    })

    t.test('a CHANNELS_DIR that does not exist stops start-up, naming the path', async (t) => {
      const dir = path.join(scratch(t, {}), 'chanels')
      await t.rejects(buildTestServer(t, { driver, env: { CHANNELS_DIR: dir } }), { name: 'ChannelFileError', message: `${dir}: CHANNELS_DIR does not exist` })
    })

    t.test('a broken channel file stops start-up, naming file and line, and nothing is half-loaded', async (t) => {
      const s = await buildTestServer(t, { driver })
      const dir = scratch(t, { 'alpha.yaml': 'name: alpha\n', 'beta.yaml': 'name: beta\ndescription: a\ndescription: b\n' })
      await t.rejects(buildTestServer(t, { driver, database: s.database, env: { CHANNELS_DIR: dir } }), { name: 'ChannelFileError', message: `${path.join(dir, 'beta.yaml')}: line 3, column 1: ` })
      t.same((await s.app.inject({ url: '/channels', headers: { authorization: `Bearer ${s.tokens.reader}` } })).json().channels, [], 'alpha was not written either')
    })
  })
}

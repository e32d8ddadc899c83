/**
 * A wrong DATABASE_URL says what is wrong, against the real local PostgreSQL (trust auth),
 * never with the password in it. The closed-port and silent-server cases need no PostgreSQL.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { openDatabase } from '../../src/db/index.js'
import { runCli } from '../helpers/cli.js'
import { freePort } from '../helpers/process.js'

const PASSWORD = 'pw-' + randomBytes(6).toString('hex')
const base = process.env.TEST_DATABASE_URL === undefined ? null : new URL(process.env.TEST_DATABASE_URL)
const needsPostgres = { skip: base === null ? 'TEST_DATABASE_URL not set' : false }

async function migrateError (url: string): Promise<Error & { code?: string }> {
  const database = await openDatabase({ databaseUrl: url, dataDir: '/nonexistent' })
  try {
    await database.migrate()
  } catch (error) {
    return error as Error
  } finally {
    await database.close()
  }
  throw new Error('migrate succeeded')
}

t.test('a closed port: connection refused at host:port', async (t) => {
  const port = await freePort()
  const error = await migrateError(`postgres://postgres:${PASSWORD}@127.0.0.1:${port}/chartcast`)
  t.match(error, { code: 'DATABASE_CONNECTION_FAILED', message: `DATABASE_URL: connection refused at 127.0.0.1:${port}` })
  t.notMatch(error.message, PASSWORD)
})

t.test('a server that accepts and never answers: no answer within the connect timeout', async (t) => {
  const sockets: net.Socket[] = []
  const silent = net.createServer((socket) => { sockets.push(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const socket of sockets) socket.destroy(); silent.close() })
  const port = (silent.address() as net.AddressInfo).port
  const error = await migrateError(`postgres://postgres:${PASSWORD}@127.0.0.1:${port}/chartcast`)
  t.match(error, { code: 'DATABASE_CONNECTION_FAILED', message: `DATABASE_URL: no answer from 127.0.0.1:${port} within the connect timeout` })
})

t.test('a missing database: database "x" does not exist', needsPostgres, async (t) => {
  const name = 'chartcast_missing_' + randomBytes(4).toString('hex')
  const url = new URL(base!)
  url.pathname = '/' + name
  url.password = PASSWORD
  const error = await migrateError(url.toString())
  t.match(error, { code: 'DATABASE_CONNECTION_FAILED', message: `DATABASE_URL: database "${name}" does not exist on ${url.hostname}:${url.port || 5432}` })
  t.notMatch(error.message, PASSWORD)
})

t.test('an unknown role: authentication failed for user "y"', needsPostgres, async (t) => {
  const role = 'nobody_' + randomBytes(4).toString('hex')
  const url = new URL(base!)
  url.username = role
  url.password = PASSWORD
  const error = await migrateError(url.toString())
  t.match(error, { code: 'DATABASE_CONNECTION_FAILED', message: `DATABASE_URL: authentication failed for user "${role}" on ${url.hostname}:${url.port || 5432}: role "${role}" does not exist` })
  t.notMatch(error.message, PASSWORD)
})

t.test('an unresolvable host: cannot resolve host', async (t) => {
  const error = await migrateError(`postgres://postgres:${PASSWORD}@chartcast-no-such-host.invalid:5432/chartcast`)
  t.match(error, { code: 'DATABASE_CONNECTION_FAILED', message: 'DATABASE_URL: cannot resolve host "chartcast-no-such-host.invalid"' })
})

t.test('chartcast migrate and serve print the explanation, not the failed query, and no password', async (t) => {
  const port = await freePort()
  const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/chartcast`
  const dataDir = mkdtempSync(path.join(tmpdir(), 'chartcast-pg-error-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  for (const command of ['migrate', 'serve']) {
    const result = await runCli([command], { DATABASE_URL: url, DATA_DIR: dataDir, CHANNELS_DIR: path.join(dataDir, 'none'), PORT: '0' })
    t.not(result.code, 0, command)
    t.match(result.stderr, `chartcast: DATABASE_URL: connection refused at 127.0.0.1:${port}`, command)
    t.notMatch(result.stderr + result.stdout, /Failed query/, `${command}: no drizzle query text`)
    t.notMatch(result.stderr + result.stdout, PASSWORD, `${command}: no password`)
  }
})

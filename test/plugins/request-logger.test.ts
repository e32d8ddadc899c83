/** The request logger is made on first use: a request that logs nothing builds no pino child. */
import t from 'tap'
import Fastify, { LogController } from 'fastify'
import { Writable } from 'node:stream'
import { lazyRequestLogger } from '../../src/plugins/request-logger.js'

function server (lines: string[]) {
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const app = Fastify({ logger: { level: 'info', stream }, logController: new LogController({ disableRequestLogging: true }), childLoggerFactory: lazyRequestLogger })
  let children = 0
  const child = app.log.child
  // pino children inherit from their parent: `this` keeps a child's child a child of it.
  app.log.child = function (this: typeof app.log, ...args: Parameters<typeof child>) { children++; return child.apply(this, args) }
  app.get('/quiet', async () => 'ok')
  app.get('/loud', async (request) => {
    request.log.warn({ what: 'x' }, 'logged')
    request.log.info('again')
    return 'ok'
  })
  return { app, children: () => children }
}

t.test('a request that logs nothing makes no child logger', async (t) => {
  const lines: string[] = []
  const s = server(lines)
  t.teardown(() => s.app.close())
  t.equal((await s.app.inject({ url: '/quiet', headers: { 'request-id': 'a' } })).statusCode, 200)
  t.equal(s.children(), 0)
})

t.test('a request that logs gets one child, its lines carry the reqId and the level rules hold', async (t) => {
  const lines: string[] = []
  const s = server(lines)
  t.teardown(() => s.app.close())
  t.equal((await s.app.inject({ url: '/loud' })).statusCode, 200)
  t.equal(s.children(), 1, 'made once, on the first line')
  const logged = lines.map((l) => JSON.parse(l) as { msg?: string, reqId?: string, level: number, what?: string }).filter((l) => l.msg === 'logged' || l.msg === 'again')
  t.equal(logged.length, 2)
  t.ok(logged.every((l) => typeof l.reqId === 'string' && l.reqId === logged[0]!.reqId), 'both lines carry the same reqId')
  t.same([logged[0]!.level, logged[0]!.what, logged[1]!.level], [40, 'x', 30])
})

t.test('the stand-in reports the parent level until made, and a child of it logs with both bindings', async (t) => {
  const lines: string[] = []
  const s = server(lines)
  t.teardown(() => s.app.close())
  const log = lazyRequestLogger(s.app.log, { reqId: 'r-1' }, {})
  t.equal(log.level, 'info')
  log.child({ step: 'inner' }).warn('nested')
  const line = JSON.parse(lines.at(-1)!) as { reqId: string, step: string, msg: string }
  t.same([line.reqId, line.step, line.msg], ['r-1', 'inner', 'nested'])
})

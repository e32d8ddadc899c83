/**
 * The dashboard at /ui/: the built page, its hashed assets cached for a year, the app's own
 * paths answered with the page, a missing asset a 404, and a helpful 503 where it is not built.
 */
import { readdirSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { buildDashboard } from '../helpers/dashboard.js'
import { buildTestServer } from '../helpers/server.js'

t.test('served from the build', async (t) => {
  const dir = await buildDashboard()
  const s = await buildTestServer(t, { dashboardDir: dir })
  const script = readdirSync(path.join(dir, 'assets')).find((f) => f.endsWith('.js'))!

  t.test('/ and /ui redirect to /ui/', async (t) => {
    for (const url of ['/', '/ui']) {
      const res = await s.app.inject({ url })
      t.equal(res.statusCode, 302, url)
      t.equal(res.headers.location, '/ui/')
    }
  })

  t.test('/ui/ is the page, revalidated every time, with a same-origin-only CSP', async (t) => {
    const res = await s.app.inject({ url: '/ui/' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/html/)
    t.equal(res.headers['cache-control'], 'no-cache')
    t.match(res.headers['content-security-policy'], /default-src 'self'/)
    t.match(res.headers['content-security-policy'], /script-src 'self'/)
    t.match(res.body, `/ui/assets/${script}`)
    t.notMatch(res.body, /https?:\/\//, 'the page loads nothing from another origin')
  })

  t.test('a page of the app (/ui/channels/stable) is answered with the page itself', async (t) => {
    const res = await s.app.inject({ url: '/ui/channels/stable' })
    t.equal(res.statusCode, 200)
    t.equal(res.body, (await s.app.inject({ url: '/ui/' })).body)
  })

  t.test('hashed assets are cached for a year, immutable', async (t) => {
    const res = await s.app.inject({ url: `/ui/assets/${script}` })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /javascript/)
    t.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable')
  })

  t.test('a missing asset is a 404 problem, not the page', async (t) => {
    const res = await s.app.inject({ url: '/ui/assets/index-gone.js' })
    t.equal(res.statusCode, 404)
    t.equal(res.json().code, 'NOT_FOUND')
  })

  t.test('the build refers to no other origin (no CDN, no external font)', async (t) => {
    for (const file of readdirSync(path.join(dir, 'assets'))) {
      if (!file.endsWith('.css')) continue
      const res = await s.app.inject({ url: `/ui/assets/${file}` })
      t.notMatch(res.body, /url\(\s*['"]?https?:/, `${file} loads nothing from elsewhere`)
      t.notMatch(res.body, /@import/, `${file} imports nothing`)
    }
  })
})

t.test('without a build, /ui/ is a 503 problem saying how to build it', async (t) => {
  const s = await buildTestServer(t, { dashboardDir: path.join(path.sep, 'nonexistent', 'ui') })
  const res = await s.app.inject({ url: '/ui/' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'NOT_READY')
  t.match(res.json().detail, /npm run build/)
})

/**
 * Serves the dashboard's build (`vite build`: src/ui -> dist/ui) at /ui/, from this server
 * only: no CDN, no external fonts, so it works on an air-gapped network. Paths under /ui/ that
 * are not files are the single-page app's own (/ui/channels/stable) and get its index.html.
 * Hashed assets (assets/index-3f2a1b.js) never change under their name: cached for a year;
 * index.html is revalidated every time, so a new build shows at the next load.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { ChartcastError } from '../errors.js'

/** dist/ui at the package root, two levels above both src/plugins and dist/plugins. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../dist/ui', import.meta.url))

export const DASHBOARD_PREFIX = '/ui/'

/** The page loads and talks to this server only; a browser refuses anything else. */
const DASHBOARD_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "style-src 'self'"
].join('; ')

const YEAR_SECONDS = 365 * 24 * 3600

function setPageHeaders (reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
}

/** Every file of the build, relative to its root with forward slashes; read once at start. */
function listFiles (root: string): Set<string> {
  return new Set(readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/')))
}

export default fp<{ root?: string }>(async (fastify, opts) => {
  const root = opts.root ?? DEFAULT_DASHBOARD_DIR
  const indexFile = path.join(root, 'index.html')
  const built = existsSync(indexFile)
  if (!built) fastify.log.warn({ root }, 'the dashboard is not built (npm run build); /ui/ answers 503')
  const files = built ? listFiles(root) : new Set<string>()
  const indexHtml = built ? readFileSync(indexFile) : null

  await fastify.register(fastifyStatic, { root: built ? root : process.cwd(), serve: false })

  const sendIndex = async (reply: FastifyReply) => {
    if (indexHtml === null) throw new ChartcastError('NOT_READY', 'the dashboard is not built: run npm run build')
    return await setPageHeaders(reply).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(indexHtml)
  }

  const hidden = { schema: { hide: true } }
  fastify.get('/', hidden, async (_request, reply) => await reply.redirect(DASHBOARD_PREFIX))
  fastify.get('/ui', hidden, async (_request, reply) => await reply.redirect(DASHBOARD_PREFIX))
  fastify.get('/ui/', hidden, async (_request, reply) => await sendIndex(reply))
  fastify.get<{ Params: { '*': string } }>('/ui/*', hidden, async (request, reply) => {
    const file = request.params['*']
    if (files.has(file) && file !== 'index.html') {
      const immutable = file.startsWith('assets/')
      return await setPageHeaders(reply).sendFile(file, { maxAge: immutable ? YEAR_SECONDS * 1000 : 0, immutable, cacheControl: true })
    }
    // A missing asset is a 404, not the page: a stale index.html asking for an old bundle must fail visibly.
    if (file.startsWith('assets/')) throw new ChartcastError('NOT_FOUND', `no dashboard asset ${file}`)
    return await sendIndex(reply)
  })
}, { name: 'chartcast-dashboard' })

/**
 * Boot only: resolve keys and secrets, create the fastify instance, register the app,
 * install graceful shutdown, listen.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import closeWithGrace from 'close-with-grace'
import app, { fastifyOptions } from './app.js'
import type { Config } from './config.js'
import { ensureDevMaterial } from './dev-keys.js'
import { loadLicenseKeys } from './plugins/license-verifier.js'

/** How long close-with-grace lets shutdown take before it exits the process regardless. */
const SHUTDOWN_GRACE_MS = 10_000

export async function startServer (config: Config): Promise<FastifyInstance> {
  const fastify = Fastify(fastifyOptions(config))
  const dev = await ensureDevMaterial(config.dataDir, config.licensePublicKeys.length === 0, config.authSecret === null)
  const keyPaths = dev.licensePublicKeys ?? config.licensePublicKeys
  const authSecret = dev.authSecret ?? config.authSecret!
  const licenseKeys = await loadLicenseKeys(keyPaths)

  await fastify.register(app, { config, licenseKeys, authSecret })

  if (dev.licensePrivateKey !== null || dev.authSecret !== null) {
    const adminToken = fastify.jwt.sign({ sub: 'dev-admin', role: 'admin' }, { expiresIn: '30d' })
    fastify.log.warn({
      licensePrivateKey: dev.licensePrivateKey,
      generatedAuthSecret: dev.authSecret !== null
    }, 'DEVELOPMENT MODE: generated keys/secret under DATA_DIR/dev-keys. Set LICENSE_PUBLIC_KEYS and AUTH_SECRET in production.')
    // Printed on stdout for the person who just ran `npm start`; deliberately not a log line.
    process.stdout.write([
      '',
      '  chartcast development credentials (valid 30 days):',
      `  admin token:  ${adminToken}`,
      dev.licensePrivateKey !== null ? `  mint a test license:  node dist/cli/index.js license issue --key ${dev.licensePrivateKey} --sub dev-cluster --channels '*' --channel stable --expires 30d` : '',
      ''
    ].join('\n') + '\n')
  }

  closeWithGrace({ delay: SHUTDOWN_GRACE_MS, logger: fastify.log }, async ({ signal, err }) => {
    if (err !== undefined) fastify.log.error({ err: { type: err.name } }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    // close() drops idle and stalled connections at once and lets requests being handled finish;
    // if some still run at half the grace period, their connections are cut, so close() goes on
    // to close the database before close-with-grace gives up and exits.
    const cutOff = setTimeout(() => { fastify.server.closeAllConnections() }, SHUTDOWN_GRACE_MS / 2)
    try {
      await fastify.close()
    } finally {
      clearTimeout(cutOff)
    }
  })

  await fastify.listen({ port: config.port, host: config.host })
  return fastify
}

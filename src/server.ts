/**
 * Boot only: resolve keys and secrets, create the fastify instance, register the app,
 * install graceful shutdown, listen.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import closeWithGrace from 'close-with-grace'
import app, { explainStartupError, fastifyOptions, specSigningOf } from './app.js'
import { ConfigError, type Config } from './config.js'
import { ensureDevMaterial, ensureDevSigningKeys, missingProductionKeys } from './dev-keys.js'
import { loadLicenseKeys } from './services/license-verifier.js'
import { formatDuration } from './domain/duration.js'
import { issuePublisherToken } from './token-tools.js'

/** How long close-with-grace lets shutdown take before it exits the process regardless. */
const SHUTDOWN_GRACE_MS = 10_000

export async function startServer (config: Config): Promise<FastifyInstance> {
  const missing = missingProductionKeys(config)
  if (config.production && missing.length > 0) {
    throw new ConfigError(`NODE_ENV=production, but ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not set: a production server never falls back to generated development keys`)
  }
  const fastify = Fastify(fastifyOptions(config))
  const dev = await ensureDevMaterial(config.dataDir, config.licensePublicKeys.length === 0, config.authSecret === null)
  const keyPaths = dev.licensePublicKeys ?? config.licensePublicKeys
  const authSecret = dev.authSecret ?? config.authSecret!
  const licenseKeys = await loadLicenseKeys(keyPaths)

  // Development: answers are signed with generated keys, so agents can be tried with --trust-root.
  // In production, signing is on only when configured (the app says so once when it is off).
  const devSigning = !config.production && config.specKeyset === null ? await ensureDevSigningKeys(config.dataDir) : null
  const specSigning = specSigningOf(devSigning === null ? config : { ...config, specSigningKeys: [devSigning.onlineKey], specKeyset: devSigning.chain })

  try {
    await fastify.register(app, { config, licenseKeys, authSecret, specSigning })
  } catch (error) {
    throw explainStartupError(error, config)
  }
  if (devSigning !== null) {
    fastify.log.warn({ keyset: devSigning.chain, trustRoot: devSigning.rootPublicKey, generated: devSigning.generated }, 'DEVELOPMENT MODE: spec answers are signed with development keys under DATA_DIR/dev-keys/spec-signing. Set SPEC_SIGNING_KEYS and SPEC_KEYSET in production (docs/signing.md).')
  }

  if (dev.licensePrivateKey !== null || dev.authSecret !== null) {
    const lifetime = Math.min(30 * 86400, config.publisherTokenMaxLifetimeSeconds)
    const adminToken = (await issuePublisherToken(authSecret, { sub: 'dev-admin', role: 'admin', expiresIn: lifetime })).token
    const origin = (used: boolean, generated: boolean): string => !used ? 'configured' : generated ? 'generated now' : 'reused from DATA_DIR/dev-keys'
    fastify.log.warn({
      licensePrivateKey: dev.licensePrivateKey,
      licenseKeys: origin(dev.licensePrivateKey !== null, dev.generated.licenseKeys),
      authSecret: origin(dev.authSecret !== null, dev.generated.authSecret)
    }, 'DEVELOPMENT MODE: development keys/secret under DATA_DIR/dev-keys. Set LICENSE_PUBLIC_KEYS and AUTH_SECRET in production (NODE_ENV=production refuses to start without them).')
    // Printed on stdout for the person who just ran `npm start`; deliberately not a log line.
    process.stdout.write([
      '',
      `  chartcast development credentials (valid ${formatDuration(lifetime * 1000)}):`,
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

/**
 * Graceful shutdown with the database the app opened itself (as `chartcast serve` runs): the
 * last check-in flush runs in onClose before the database plugin closes the database.
 */
import t from 'tap'
import Fastify from 'fastify'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { eq } from 'drizzle-orm'
import app, { fastifyOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { openDatabase } from '../../src/db/index.js'
import { deployments } from '../../src/db/schema.js'
import { generateLicenseKeyPair, issueLicense } from '../../src/license-tools.js'
import { loadLicenseKeys } from '../../src/services/license-verifier.js'
import { issuePublisherToken } from '../../src/token-tools.js'

t.test('closing the app flushes pending check-ins before its own database closes', async (t) => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'chartcast-fleet-close-'))
  t.teardown(() => { rmSync(scratch, { recursive: true, force: true }) })
  const keyPair = await generateLicenseKeyPair('ES256')
  writeFileSync(path.join(scratch, 'license.pem'), keyPair.publicPem)
  mkdirSync(path.join(scratch, 'channels'))
  const authSecret = 'x'.repeat(40)
  const config = loadConfig({
    DATA_DIR: path.join(scratch, 'data'),
    CHANNELS_DIR: path.join(scratch, 'channels'),
    LICENSE_PUBLIC_KEYS: path.join(scratch, 'license.pem'),
    AUTH_SECRET: authSecret,
    LOG_LEVEL: 'silent',
    CHECKIN_FLUSH_INTERVAL: '1h'
  })
  const fastify = Fastify(fastifyOptions(config))
  await fastify.register(app, { config, licenseKeys: await loadLicenseKeys(config.licensePublicKeys), authSecret })
  await fastify.ready()
  const admin = (await issuePublisherToken(authSecret, { sub: 'admin', role: 'admin', expiresIn: 600 })).token
  const headers = { authorization: `Bearer ${admin}` }
  t.equal((await fastify.inject({ method: 'PUT', url: '/channels/stable', headers, payload: {} })).statusCode, 201)
  t.equal((await fastify.inject({ method: 'POST', url: '/releases', headers, payload: { version: '1.0.0', chart: { url: 'https://charts.example.com/a', name: 'a', version: '0.1.0' } } })).statusCode, 201)
  t.equal((await fastify.inject({ method: 'POST', url: '/channels/stable/releases', headers, payload: { version: '1.0.0' } })).statusCode, 201)
  const license = await issueLicense(keyPair.privatePem, { sub: 'closing-cluster', channels: ['stable'], expiresIn: 600 })
  t.equal((await fastify.inject({ url: '/channels/stable/spec', headers: { authorization: `Bearer ${license}` } })).statusCode, 200)
  t.equal(fastify.checkins.pendingCount, 1)
  await fastify.close()

  const reopened = await openDatabase({ databaseUrl: null, dataDir: config.dataDir })
  t.teardown(async () => { await reopened.close() })
  const [row] = await reopened.db.select().from(deployments).where(eq(deployments.id, 'closing-cluster'))
  t.equal(row?.servedVersion, '1.0.0', 'the check-in reached the database')
})

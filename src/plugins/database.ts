/** Opens the database (or takes an opened one), applies migrations and syncs channel files. */
import { existsSync } from 'node:fs'
import fp from 'fastify-plugin'
import { openDatabase, type Database } from '../db/index.js'
import { createStore, type Store } from '../db/store.js'
import { readChannelDir } from '../channel-loader.js'
import type { Config } from '../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    database: Database
    store: Store
  }
}

export interface DatabasePluginOptions {
  config: Config
  /** An already opened database (tests, the CLI); the caller closes it. */
  database?: Database
}

export default fp<DatabasePluginOptions>(async (fastify, opts) => {
  const owned = opts.database === undefined
  const database = opts.database ?? await openDatabase({
    databaseUrl: opts.config.databaseUrl,
    dataDir: opts.config.dataDir,
    onListenError: (error) => fastify.log.warn({ reason: error.message }, 'database connection problem'),
    onNotice: (message) => fastify.log.warn(message)
  })
  if (owned) fastify.addHook('onClose', async () => { await database.close() })
  await database.migrate()
  const store = createStore(database.db)
  fastify.decorate('database', database)
  fastify.decorate('store', store)

  if (existsSync(opts.config.channelsDir)) {
    // Parse every file first (a broken file throws, naming file and line), then write all in one transaction.
    const definitions = readChannelDir(opts.config.channelsDir)
    const result = await store.syncChannels(definitions, 'sync:startup')
    fastify.log.info({ dir: opts.config.channelsDir, ...result }, 'channels synced')
  } else {
    fastify.log.info({ dir: opts.config.channelsDir }, 'no channels directory; channels come from the API only')
  }
}, { name: 'chartcast-database' })

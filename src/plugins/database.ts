/** Opens the database (or takes an opened one), applies migrations and syncs channel files. */
import fp from 'fastify-plugin'
import { openDatabase, type Database } from '../db/index.js'
import { createStore, type Store } from '../db/store.js'
import { readStartupChannelDir } from '../channel-loader.js'
import type { Config } from '../config.js'
import { logSafeReason } from './problems.js'

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
    onListenError: (error) => fastify.log.warn({ reason: logSafeReason(error) }, 'database connection problem'),
    onNotice: (message) => fastify.log.warn(message)
  })
  if (owned) fastify.addHook('onClose', async () => { await database.close() })
  await database.migrate()
  const store = createStore(database.db)
  fastify.decorate('database', database)
  fastify.decorate('store', store)

  // Parse every file first (a broken file throws, naming file and line), then write all in one transaction.
  const definitions = readStartupChannelDir(opts.config.channelsDir, opts.config.channelsDirExplicit)
  if (definitions === null) {
    fastify.log.warn({ dir: opts.config.channelsDir }, 'the default channels directory does not exist; channels come from the API only (set CHANNELS_DIR to sync channel files)')
  } else {
    const result = await store.syncChannels(definitions, 'sync:startup')
    fastify.log.info({ dir: opts.config.channelsDir, ...result }, 'channels synced')
    if (result.frozen.length > 0) {
      fastify.log.warn({ channels: result.frozen }, 'frozen channels keep what they serve: their channel files apply at the first sync after the unfreeze (restart, or chartcast sync DIR)')
    }
  }
}, { name: 'chartcast-database' })

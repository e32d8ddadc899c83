/**
 * `serve`, `migrate`, `sync DIR`: the server and its database. Each action imports what it
 * needs, so registering these commands (and `--help`) loads no server, database or logger.
 */
import type { Command } from 'commander'
import { loadConfig } from '../config.js'

export function registerServerCommands (program: Command): void {
  program.command('serve')
    .description('Run the deploy server. Configured by environment variables (PORT, DATABASE_URL, DATA_DIR, CHANNELS_DIR, LICENSE_PUBLIC_KEYS, AUTH_SECRET, ...; see the README).')
    .action(async () => {
      // The configuration is checked before the server's modules load: a mistake in it is
      // reported at once, without the seconds of CPU that importing the app takes.
      const config = loadConfig()
      const { startServer } = await import('../server.js')
      await startServer(config)
    })

  program.command('migrate')
    .description('Apply database migrations (DATABASE_URL, else the embedded database under DATA_DIR) and exit.')
    .action(async () => {
      const config = loadConfig()
      const { openDatabase } = await import('../db/index.js')
      const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
      try {
        await database.migrate()
        process.stdout.write(`migrations applied (${database.driver})\n`)
      } finally {
        await database.close()
      }
    })

  program.command('sync')
    .description('Check every channels/*.yaml file in DIR and write them all to the database in one transaction (idempotent). A broken file changes nothing.')
    .argument('<dir>', 'directory of channel YAML files')
    .action(async (dir: string) => {
      const config = loadConfig()
      const { readChannelDir } = await import('../channel-loader.js')
      const definitions = readChannelDir(dir)
      const [{ openDatabase }, { createStore }, { default: pino }] = await Promise.all([
        import('../db/index.js'), import('../db/store.js'), import('pino')
      ])
      const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
      try {
        await database.migrate()
        const result = await createStore(database.db).syncChannels(definitions, 'sync:cli')
        pino({ level: 'info' }).info(result, 'channels synced')
        const unmanaged = result.unmanaged.length === 0 ? '' : `; no longer managed by a file: ${result.unmanaged.join(', ')}`
        const frozen = result.frozen.length === 0 ? '' : `; frozen, left as they are until unfrozen and synced again: ${result.frozen.join(', ')}`
        process.stdout.write(`created: ${result.created.join(', ') || '-'}; updated: ${result.updated.join(', ') || '-'}; unchanged: ${result.unchanged.join(', ') || '-'}${frozen}${unmanaged}\n`)
      } finally {
        await database.close()
      }
    })
}

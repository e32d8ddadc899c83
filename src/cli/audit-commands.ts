/**
 * `audit verify`: checks the audit log's hash chain (src/domain/audit-chain.ts). The action
 * imports the database layer itself, so registering the command loads none of it.
 */
import type { Command } from 'commander'
import { loadConfig } from '../config.js'
import type { AuditChainReport } from '../domain/audit-chain.js'

/** Exit code for a chain that does not verify (1 is any other failure, such as no database). */
export const AUDIT_CHAIN_BROKEN_EXIT = 2

function range (part: { count: number, firstId: number | null, lastId: number | null }): string {
  return part.count === 0 ? '0 rows' : `${part.count} row${part.count === 1 ? '' : 's'} (ids ${part.firstId}-${part.lastId})`
}

export function describeAuditChainReport (report: AuditChainReport): string[] {
  const lines: string[] = []
  if (report.broken === null) {
    lines.push(`audit chain intact: ${range(report.chained)}, head ${report.headHash}`)
  } else {
    lines.push(`audit chain BROKEN${report.broken.id === null ? '' : ` at row ${report.broken.id}`}: ${report.broken.problem}`)
    lines.push(`verified before the break: ${range(report.chained)}`)
  }
  if (report.unchained.count > 0) {
    lines.push(`not covered: ${range(report.unchained)} written before the chain existed (migration 0003 starts it at the next row)`)
  }
  return lines
}

export function registerAuditCommands (program: Command): void {
  const audit = program.command('audit').description('The audit log')
  audit.command('verify')
    .description(`Check the audit log's hash chain (DATABASE_URL, else the embedded database under DATA_DIR). Names the first row that does not verify and exits ${AUDIT_CHAIN_BROKEN_EXIT}; prints the head hash, worth keeping elsewhere, when it verifies.`)
    .action(async () => {
      const config = loadConfig()
      const [{ sql }, { openDatabase }, { createStore }] = await Promise.all([
        import('drizzle-orm'), import('../db/index.js'), import('../db/store.js')
      ])
      const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
      try {
        const { rows } = await database.db.execute(sql`select to_regclass('audit_chain_head') is not null as present`) as unknown as { rows: Array<{ present: boolean }> }
        if (rows[0]?.present !== true) throw new Error('this database has no audit chain yet: run chartcast migrate (or start the server once)')
        const report = await createStore(database.db).verifyAuditChain()
        const text = describeAuditChainReport(report).join('\n') + '\n'
        if (report.broken === null) {
          process.stdout.write(text)
        } else {
          process.stderr.write(text)
          process.exitCode = AUDIT_CHAIN_BROKEN_EXIT
        }
      } finally {
        await database.close()
      }
    })
}

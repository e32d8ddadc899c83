/** Throwaway PostgreSQL databases, made next to a server's URL and dropped afterwards (tests and the benchmark). */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export interface ThrowawayDatabase {
  url: string
  drop (): Promise<void>
}

async function adminQuery (base: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: base })
  await client.connect()
  try {
    await client.query(statement)
  } finally {
    await client.end()
  }
}

/** A new, empty database on `base`'s server, named `<prefix>_<random>`. */
export async function createDatabaseNextTo (base: string, prefix: string): Promise<ThrowawayDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  await adminQuery(base, `CREATE DATABASE ${name}`)
  const url = new URL(base)
  url.pathname = '/' + name
  return { url: url.toString(), drop: async () => { await adminQuery(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) } }
}

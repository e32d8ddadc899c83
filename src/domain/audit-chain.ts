/**
 * The audit log's hash chain: each row stores the hash of the row before it (`prevHash`) and
 * its own `hash` over its content and that link, so changing, removing or reordering a row
 * breaks every link after it. This makes tampering evident, not impossible: someone who can
 * rewrite the whole table can recompute the chain, which is why `chartcast audit verify`
 * prints the head hash for keeping somewhere else.
 */
import { createHash } from 'node:crypto'
import { canonicalJson } from './values.js'

/** What the first chained row links to. */
export const GENESIS_HASH = '0'.repeat(64)

/** A row as stored and read back; `at` has millisecond precision (the writer truncates it). */
export interface AuditChainEntry {
  id: number
  at: Date
  actor: string
  action: string
  target: string
  detail: Record<string, unknown>
  prevHash: string
}

/**
 * The canonical form: RFC 8785 (JCS) JSON of {id, at, actor, action, target, detail, prevHash}
 * with `at` as an ISO 8601 UTC string with milliseconds (Date#toISOString). canonicalJson sorts
 * keys by UTF-16 code units and serialises numbers and strings as ECMAScript JSON does, which
 * is what RFC 8785 sections 3.2.2 and 3.2.3 specify for the JSON that jsonb can hold.
 */
export function canonicalAuditForm (entry: AuditChainEntry): string {
  return canonicalJson({
    id: entry.id,
    at: entry.at.toISOString(),
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    detail: entry.detail,
    prevHash: entry.prevHash
  })
}

/** Lower-case hex SHA-256 of the canonical form's UTF-8 bytes. */
export function auditEntryHash (entry: AuditChainEntry): string {
  return createHash('sha256').update(canonicalAuditForm(entry), 'utf8').digest('hex')
}

/** A row as the verifier reads it: rows from before the chain have null hashes. */
export interface StoredAuditRow extends Omit<AuditChainEntry, 'prevHash'> {
  prevHash: string | null
  hash: string | null
}

export interface AuditChainHead {
  lastId: number
  lastHash: string
}

export interface AuditChainBreak {
  /** The first row that does not verify (null when the rows verify but the head does not match them). */
  id: number | null
  problem: string
}

export interface AuditChainReport {
  /** Rows written before the chain existed (null hash, all before the first chained row). */
  unchained: { count: number, firstId: number | null, lastId: number | null }
  chained: { count: number, firstId: number | null, lastId: number | null }
  /** The hash of the last chained row (GENESIS_HASH when there is none). */
  headHash: string
  broken: AuditChainBreak | null
}

/**
 * Walks the rows in id order and reports the first one that breaks the chain: a link that
 * does not name the previous row's hash (a row removed, inserted or reordered), or a hash
 * that does not match the row's own content (a row changed). The head must then name the
 * last chained row, which catches rows removed from the end.
 */
export async function verifyAuditChain (rows: AsyncIterable<StoredAuditRow>, head: AuditChainHead | null): Promise<AuditChainReport> {
  const unchained = { count: 0, firstId: null as number | null, lastId: null as number | null }
  const chained = { count: 0, firstId: null as number | null, lastId: null as number | null }
  let previousHash = GENESIS_HASH
  let previousId: number | null = null
  const report = (broken: AuditChainBreak | null): AuditChainReport => ({ unchained, chained, headHash: previousHash, broken })

  for await (const row of rows) {
    if (row.hash === null || row.prevHash === null) {
      if (chained.count > 0) return report({ id: row.id, problem: `row ${row.id} has no hash, but it comes after chained row ${previousId}` })
      unchained.count++
      unchained.firstId ??= row.id
      unchained.lastId = row.id
      continue
    }
    if (row.prevHash !== previousHash) {
      const expected = previousId === null ? `the genesis value ${GENESIS_HASH}` : `the hash of row ${previousId} (${previousHash})`
      return report({ id: row.id, problem: `row ${row.id}'s prev_hash ${row.prevHash} is not ${expected}: a row before it was removed, inserted or reordered` })
    }
    const recomputed = auditEntryHash({ ...row, prevHash: row.prevHash })
    if (recomputed !== row.hash) {
      return report({ id: row.id, problem: `row ${row.id}'s content does not match its hash (stored ${row.hash}, content hashes to ${recomputed}): the row was changed` })
    }
    chained.count++
    chained.firstId ??= row.id
    chained.lastId = row.id
    previousHash = row.hash
    previousId = row.id
  }

  if (head === null) return report({ id: null, problem: 'the chain head row is missing' })
  // Before the first chained row the head holds the last unchained id (migration 0003).
  const expectedLastId = previousId ?? unchained.lastId ?? 0
  if (head.lastId !== expectedLastId || head.lastHash !== previousHash) {
    return report({
      id: null,
      problem: `the chain head names row ${head.lastId} (${head.lastHash}) but the chain ends at ${previousId === null ? 'no row' : `row ${previousId}`} (${previousHash}): rows were removed from the end, or the head was changed`
    })
  }
  return report(null)
}

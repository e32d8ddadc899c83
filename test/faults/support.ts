/**
 * Shared by the fault tests: polling with a deadline, spec pulls, problem checks, and a way
 * to run two app instances whose teardown order the test controls.
 */
import type { LightMyRequestResponse } from 'fastify'
import type { TestServer } from '../helpers/server.js'

/** The convergence target of issue 4: a change on one replica is served by another within 1 s. */
export const CONVERGENCE_MS = 1_000

export function postgresUrl (): string | null {
  const url = process.env.TEST_DATABASE_URL
  return url === undefined || url === '' ? null : url
}

export const NEEDS_POSTGRES = 'needs TEST_DATABASE_URL (a PostgreSQL server); CI sets it'

/**
 * Polls `probe` until it returns true or `deadlineMs` passes; returns the milliseconds it
 * took, or null when the deadline passed. No fixed sleeps: fast machines finish fast.
 */
export async function pollUntil (probe: () => Promise<boolean>, deadlineMs: number, intervalMs = 10): Promise<number | null> {
  const start = performance.now()
  for (;;) {
    if (await probe()) return Math.round(performance.now() - start)
    if (performance.now() - start > deadlineMs) return null
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

export async function pull (server: TestServer, channel: string, license: string, etag?: string): Promise<LightMyRequestResponse> {
  return await server.app.inject({
    url: `/channels/${channel}/spec`,
    headers: { authorization: `Bearer ${license}`, ...(etag !== undefined && { 'if-none-match': etag }) }
  })
}

/** The version a replica currently serves for a channel, or the refusal code. */
export async function served (server: TestServer, channel: string, license: string): Promise<string> {
  const res = await pull(server, channel, license)
  if (res.statusCode === 200) return (res.json() as { version: string }).version
  return (res.json() as { code: string }).code
}

/** Collects teardown functions so a test can close app instances before their shared databases. */
export class Closers {
  private readonly fns: Array<() => unknown> = []
  teardown (fn: () => unknown): void { this.fns.push(fn) }
  async closeAll (): Promise<void> {
    // Last registered, first closed; each runs once however often this is called.
    for (let fn = this.fns.pop(); fn !== undefined; fn = this.fns.pop()) await fn()
  }
}

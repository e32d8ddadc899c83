/**
 * The cost of the worst request bodies: 1 MiB of JSON or YAML shaped to be as expensive as we
 * could make it for the parser (many keys, many tokens, deep nesting, aliases, huge numbers).
 * Part of `npm run bench`; alone: `npx tsx bench/hostile-bodies.ts`. See bench/README.md.
 *
 * 1. Each body through the server's own parsers (parseJsonBody / parseYamlBody), timed: the
 *    target is <= 100 ms for the slowest, refused or accepted.
 * 2. Each body POSTed over HTTP to a running app, with and without a publisher token, while
 *    monitorEventLoopDelay watches the event loop: the longest stall is reported, and the
 *    server's own nodejs_eventloop_lag_max_seconds (from /metrics) beside it.
 */
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { generateLicenseKeyPair } from '../src/license-tools.js'
import { MAX_YAML_BODY_BYTES, MAX_YAML_BODY_TOKENS } from '../src/domain/body-limits.js'
import { countYamlTokens } from '../src/domain/yaml.js'
import { parseJsonBody, parseYamlBody } from '../src/plugins/body-parsers.js'
import { ChartcastError } from '../src/errors.js'
import { startBenchApp } from './lib.js'

export const MIB = 1_048_576
const REPEATS = 5
export const HOSTILE_BODY_TARGET_MS = 100

interface Body { name: string, type: 'json' | 'yaml', text: string }

/** `unit(i)` repeated until the next one would pass `size` bytes, between `head` and `tail`. */
function fill (size: number, unit: (i: number) => string, head = '', tail = ''): string {
  const parts = [head]
  let length = head.length + tail.length
  for (let i = 0; ; i++) {
    const part = unit(i)
    if (length + part.length > size) break
    parts.push(part)
    length += part.length
  }
  parts.push(tail)
  return parts.join('')
}

/**
 * JSON bodies fill BODY_LIMIT's default (1 MiB). YAML bodies fill the 256 KiB the server parses
 * at most (a longer one is refused from its Content-Length, shown by the last row), and the
 * "largest accepted" rows sit just under the token and value limits, so they are parsed in full.
 */
/** The largest n for which make(n) stays within the YAML token limit (make grows with n). */
function largestWithinTokens (make: (n: number) => string): number {
  let low = 1
  let high = MAX_YAML_BODY_TOKENS
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (countYamlTokens(make(mid)) <= MAX_YAML_BODY_TOKENS) low = mid
    else high = mid - 1
  }
  return low
}

export function hostileBodies (): Body[] {
  const yamlSize = MAX_YAML_BODY_BYTES
  const nest = (size: number): string => '['.repeat(Math.floor(size / 2)) + ']'.repeat(Math.floor(size / 2))
  const anchor = 'base: &base {' + Array.from({ length: 300 }, (_, i) => `k${i}: ${i}`).join(', ') + '}\n'
  const keys = (count: number): string => Array.from({ length: count }, (_, i) => `k${i}: ${i}\n`).join('')
  const flowList = (count: number): string => '[' + '0,'.repeat(count) + '0]'
  const comments = (count: number): string => '# comment\n'.repeat(count) + 'a: 1\n'
  // Just under MAX_YAML_BODY_TOKENS, whatever it is set to, so they are parsed in full.
  const keyLines = largestWithinTokens(keys)
  const flowItems = largestWithinTokens(flowList)
  const commentLines = largestWithinTokens(comments)
  const fmtCount = (n: number): string => n.toLocaleString('en-US')
  return [
    { name: 'map of unique keys', type: 'yaml', text: fill(yamlSize, (i) => `k${i}: ${i}\n`) },
    { name: 'map, last key repeated', type: 'yaml', text: fill(yamlSize - 10, (i) => `k${i}: ${i}\n`, '', 'k0: again\n') },
    { name: 'block list of zeros', type: 'yaml', text: fill(yamlSize, () => '- 0\n') },
    { name: 'flow list of zeros', type: 'yaml', text: fill(yamlSize, () => '0,', '[', '0]') },
    { name: 'comment lines', type: 'yaml', text: fill(yamlSize, () => '#\n', '', 'a: 1\n') },
    { name: 'blank lines', type: 'yaml', text: fill(yamlSize, () => '\n', '', 'a: 1\n') },
    { name: 'flow nesting', type: 'yaml', text: nest(yamlSize) },
    { name: 'aliases of a 300-key anchor', type: 'yaml', text: fill(yamlSize, (i) => `a${i}: *base\n`, anchor) },
    { name: 'one double-quoted string', type: 'yaml', text: fill(yamlSize, () => 'x', 'a: "', '"\n') },
    { name: 'escapes in a quoted string', type: 'yaml', text: fill(yamlSize, () => '\\t', 'a: "', '"\n') },
    { name: 'multi-line quoted string', type: 'yaml', text: fill(yamlSize, () => 'x\n', 'a: "', '"\n') },
    { name: `largest accepted: ${fmtCount(keyLines)} keys`, type: 'yaml', text: keys(keyLines) },
    { name: `largest accepted: flow list of ${fmtCount(flowItems + 1)}`, type: 'yaml', text: flowList(flowItems) },
    { name: `largest accepted: ${fmtCount(commentLines)} comments`, type: 'yaml', text: comments(commentLines) },
    { name: '1 MiB (over the YAML limit)', type: 'yaml', text: fill(MIB, (i) => `k${i}: ${i}\n`) },
    { name: 'list of zeros', type: 'json', text: fill(MIB, () => '0,', '[', '0]') },
    { name: 'object of unique keys', type: 'json', text: fill(MIB, (i) => `"k${i}":0,`, '{', '"end":0}') },
    { name: 'list of small objects', type: 'json', text: fill(MIB, () => '{"a":0},', '[', '{}]') },
    { name: 'nesting', type: 'json', text: nest(MIB) },
    { name: 'numbers beyond double', type: 'json', text: fill(MIB, () => '1e309,', '[', '0]') },
    { name: 'one long string', type: 'json', text: fill(MIB, () => 'x', '{"a":"', '"}') },
    { name: 'escapes in a long string', type: 'json', text: fill(MIB, () => '\\u0041', '{"a":"', '"}') },
    { name: 'largest accepted: list', type: 'json', text: '[' + '0,'.repeat(19_998) + '0]' }
  ]
}

function outcomeOf (parse: () => unknown): string {
  try {
    parse()
    return 'parsed'
  } catch (error) {
    return error instanceof ChartcastError ? `${error.status} ${error.code}` : `thrown ${(error as Error).name}`
  }
}

/** As the server does it: a YAML body over the limit is refused from its Content-Length, unread. */
function parseBody (body: Body): unknown {
  if (body.type === 'json') return parseJsonBody(body.text)
  if (Buffer.byteLength(body.text) > MAX_YAML_BODY_BYTES) throw new ChartcastError('PAYLOAD_TOO_LARGE', 'not read')
  return parseYamlBody(body.text)
}

interface Exchange { status: number, ms: number, loopMaxMs: number }

export interface HostileBodyRow {
  body: string
  type: 'json' | 'yaml'
  bytes: number
  outcome: string
  /**
   * The parser alone, in this process, over REPEATS runs: CPU time (what an otherwise idle core
   * would take; on a shared machine wall time also counts the time other processes ran), its
   * median and slowest run (which may include a garbage collection), and median wall time.
   */
  parseCpuMedianMs: number
  parseCpuMaxMs: number
  parseWallMedianMs: number
  /** Over HTTP with a publisher token: client-side time to the answer, its status, and the longest event-loop stall. */
  authenticated: Exchange
  unauthenticated: Exchange
}

export interface HostileBodyResult {
  rows: HostileBodyRow[]
  /** The largest per-body median CPU time: the figure compared with the target. */
  worstParseCpuMs: number
  worstParseCpuMaxMs: number
  worstParseWallMs: number
  worstLoopStallMs: number
  /** nodejs_eventloop_lag_max_seconds scraped after each body (the gauge resets per scrape), in ms: its largest value. */
  metricLagMaxMs: number
}

async function send (url: string, body: Buffer | null, headers: Record<string, string>): Promise<{ status: number, text: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(url, { method: body === null ? 'GET' : 'POST', headers: body === null ? headers : { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
    })
    // A refusal sent before the body was read closes the connection; the rest of the write may fail.
    req.on('error', (error) => { if (!req.writableFinished) reject(error) })
    req.end(body ?? undefined)
  })
}

export async function measureHostileBodies (log: (line: string) => void = console.log): Promise<HostileBodyResult> {
  const bodies = hostileBodies()
  const rows: HostileBodyRow[] = []
  const bench = await startBenchApp({ databaseUrl: null, keyPair: await generateLicenseKeyPair('ES256'), authSecret: randomBytes(32).toString('hex') })
  let metricLagMaxMs = 0
  try {
    const url = await bench.listen()
    const loop = monitorEventLoopDelay({ resolution: 5 })
    loop.enable()
    const post = async (body: Body, payload: Buffer, token: string | null): Promise<Exchange> => {
      await setTimeout(20)
      loop.reset()
      const started = performance.now()
      const res = await send(`${url}/releases`, payload, { 'content-type': body.type === 'json' ? 'application/json' : 'application/yaml', ...(token !== null && { authorization: `Bearer ${token}` }) })
      const ms = performance.now() - started
      await setTimeout(20)
      return { status: res.status, ms: round(ms), loopMaxMs: round(loop.max / 1e6) }
    }
    const scrapeLagMax = async (): Promise<number> => {
      const match = /^nodejs_eventloop_lag_max_seconds ([\d.e+-]+)$/m.exec((await send(`${url}/metrics`, null, {})).text)
      return match === null ? Number.NaN : Number(match[1]) * 1000
    }
    await scrapeLagMax()
    log(`  ${'body'.padEnd(38)} ${'bytes'.padStart(8)}  ${'outcome'.padEnd(26)} parse ms: cpu median/max, wall median | with token: status, ms, loop stall ms | no token: same`)
    for (const body of bodies) {
      const cpuTimes: number[] = []
      const wallTimes: number[] = []
      let outcome = outcomeOf(() => parseBody(body)) // warm-up, not measured
      for (let i = 0; i < REPEATS; i++) {
        const cpu = process.cpuUsage()
        const started = performance.now()
        outcome = outcomeOf(() => parseBody(body))
        wallTimes.push(performance.now() - started)
        const used = process.cpuUsage(cpu)
        cpuTimes.push((used.user + used.system) / 1000)
      }
      const payload = Buffer.from(body.text)
      const authenticated = await post(body, payload, bench.tokens.publisher)
      const unauthenticated = await post(body, payload, null)
      metricLagMaxMs = Math.max(metricLagMaxMs, await scrapeLagMax())
      const row: HostileBodyRow = {
        body: body.name, type: body.type, bytes: payload.length, outcome, parseCpuMedianMs: median(cpuTimes), parseCpuMaxMs: round(Math.max(...cpuTimes)), parseWallMedianMs: median(wallTimes), authenticated, unauthenticated
      }
      rows.push(row)
      const exchange = (e: Exchange): string => `${e.status} ${String(e.ms).padStart(6)} ${String(e.loopMaxMs).padStart(6)}`
      log(`  ${`${body.type} ${body.name}`.padEnd(38)} ${String(row.bytes).padStart(8)}  ${outcome.padEnd(26)} ${String(row.parseCpuMedianMs).padStart(6)} ${String(row.parseCpuMaxMs).padStart(6)} ${String(row.parseWallMedianMs).padStart(6)} | ${exchange(authenticated)} | ${exchange(unauthenticated)}`)
    }
    loop.disable()
  } finally {
    await bench.close()
  }
  return {
    rows,
    worstParseCpuMs: Math.max(...rows.map((r) => r.parseCpuMedianMs)),
    worstParseCpuMaxMs: Math.max(...rows.map((r) => r.parseCpuMaxMs)),
    worstParseWallMs: Math.max(...rows.map((r) => r.parseWallMedianMs)),
    worstLoopStallMs: Math.max(...rows.flatMap((r) => [r.authenticated.loopMaxMs, r.unauthenticated.loopMaxMs])),
    metricLagMaxMs: round(metricLagMaxMs)
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return round(sorted[Math.floor(sorted.length / 2)]!)
}

function round (ms: number): number {
  return Math.round(ms * 10) / 10
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await measureHostileBodies()
  console.log(`worst body: parse ${result.worstParseCpuMs} ms CPU (median; target <= ${HOSTILE_BODY_TARGET_MS} ms), slowest single run ${result.worstParseCpuMaxMs} ms CPU, ${result.worstParseWallMs} ms wall; worst event-loop stall ${result.worstLoopStallMs} ms; server's nodejs_eventloop_lag_max_seconds up to ${result.metricLagMaxMs} ms`)
}

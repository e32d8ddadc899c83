/**
 * `npm run bench`: the hot-path benchmark. See bench/README.md for what each phase means.
 *
 *   BENCH_DURATION=2 npm run bench                       # smoke run (seconds per phase, default 10)
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench
 *                                                        # also PostgreSQL + replica convergence
 *
 * The servers (chartcast and the bare baseline) run in this process; autocannon runs in a
 * child process (bench/load.ts) so it does not compete with the server for the same core.
 * Exits 0 when everything was measured (PASS or MISS), nonzero when something went wrong
 * (unexpected statuses, socket errors, a wrong body, a failed child).
 */
import { execFileSync, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Session } from 'node:inspector'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { generateLicenseKeyPair, type LicenseKeyPair } from '../src/license-tools.js'
import type { CompiledSpec } from '../src/domain/spec.js'
import {
  BENCH_RATE_LIMIT_SPEC, channelName, createThrowawayDatabase, mintLicenses, publishAndPromote, seed, startBenchApp,
  type BenchApp, type MintedLicense
} from './lib.js'
import { BUCKET_MS, type LoadItem, type LoadJob, type LoadMessage, type LoadResult, type ParentMessage } from './load.js'
import type { RssJob, RssResult } from './rss.js'
import { HOSTILE_BODY_TARGET_MS, measureHostileBodies, type HostileBodyResult } from './hostile-bodies.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const DURATION = Number(process.env.BENCH_DURATION ?? '10')
const DATABASE_URL = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === '' ? null : process.env.DATABASE_URL
const CONNECTIONS = 100
/** A diagnostic pass of phase 2 with this many connections: latency without 100-deep queueing. */
const FEW_CONNECTIONS = 10
const CHANNELS = 20
const RELEASES_PER_CHANNEL = Number(process.env.BENCH_RELEASES ?? '200') // fewer only for quick profiling runs
/** BENCH_PROFILE=1: CPU-profile the server process during phases 2-4 (bench/results/phase-*.cpuprofile). */
const PROFILE = process.env.BENCH_PROFILE === '1'
/** BENCH_RSS=0 skips the RSS measurement (quick profiling runs). */
const MEASURE_RSS = process.env.BENCH_RSS !== '0'
const LICENSES = 10_000
const RSS_CHANNELS = 100
const RSS_RELEASES = 2_000
const WARMUP_SECONDS = 1
/** Each phase's time is split into slices run round-robin with the other phases (see README). */
const SLICES = Math.max(1, Math.round(DURATION / 2))
const REPLICA_ROUNDS = 10

const TARGETS = { specRatio: 0.90, notModifiedRatio: 0.95, operatorRatio: 0.85, specP99Ms: 10, rssMb: 200, replicaMs: 1000 }

if (!Number.isFinite(DURATION) || DURATION <= 0) throw new Error('BENCH_DURATION must be a positive number of seconds')

type PhaseName = 'baseline' | 'baselineHeaders' | 'specCold' | 'spec' | 'specFewConnections' | 'notModified' | 'operator'

interface PhaseResult {
  requests: number
  /** Measured seconds (the sum of the phase's slices). */
  seconds: number
  slices: number
  rps: number
  p50: number
  p99: number
  maxMs: number
  statusCodes: Record<string, number>
  expectedStatus: number
  /** Responses with another status, plus socket errors and timeouts. */
  unexpected: number
  ratio: number | null
  /** CPU this process (the servers) used during the phase, in % of one core. */
  serverCpuPercent: number
  /** CPU the load generator used, in % of one core. */
  clientCpuPercent: number
}

interface DriverRun {
  driver: 'pglite' | 'postgres'
  seedSeconds: number
  phases: Partial<Record<PhaseName, PhaseResult>>
  /** CPU pressure (PSI some avg60, %) before and after the measured phases. */
  cpuPressure: { before: number | null, after: number | null }
}

const log = (line: string): void => { process.stdout.write(line + '\n') }

/**
 * Linux PSI: % of the last 60 s in which some runnable task waited for a CPU. Other
 * processes on the machine show up here; anything well above what the bench itself causes
 * means the absolute numbers (not so much the interleaved ratios) are depressed.
 */
function cpuPressure (): number | null {
  try {
    const match = /^some avg10=[\d.]+ avg60=([\d.]+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))
    return match === null ? null : Number(match[1])
  } catch {
    return null
  }
}

/** The busiest other processes right now (ps), to say who else was using the machine. */
function otherLoad (): string {
  try {
    const lines = execFileSync('ps', ['-eo', 'pid,pcpu,args', '--sort=-pcpu'], { encoding: 'utf8' }).split('\n').slice(1)
    return lines.filter((l) => l.trim() !== '' && !l.includes(String(process.pid))).slice(0, 3).map((l) => l.trim().slice(0, 90)).join(' | ')
  } catch {
    return 'unknown'
  }
}
const failures: string[] = []

/**
 * The load generator: one long-lived child process (bench/load.ts) running autocannon.
 * execArgv is explicit so `node --cpu-prof` on this process does not profile the client.
 */
class LoadClient {
  private readonly child = fork(path.join(HERE, 'load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  private nextId = 0
  private readonly pending = new Map<number, { onStarted?: () => Promise<void>, starting: Promise<void>, resolve: (r: LoadResult) => void, reject: (e: Error) => void }>()

  constructor () {
    this.child.on('message', (message: LoadMessage) => {
      const entry = this.pending.get(message.id)
      if (entry === undefined) return
      if (message.type === 'started') {
        if (entry.onStarted !== undefined) entry.starting = entry.onStarted()
        return
      }
      this.pending.delete(message.id)
      if (message.type === 'result') entry.starting.then(() => entry.resolve(message.result), entry.reject)
      else entry.reject(new Error(`load generator: ${message.error}`))
    })
    this.child.once('exit', (code) => {
      for (const entry of this.pending.values()) entry.reject(new Error(`load generator exited with ${code}`))
      this.pending.clear()
    })
  }

  items (key: string, items: LoadItem[]): void {
    this.child.send({ type: 'items', key, items } satisfies ParentMessage)
  }

  /** `onStarted` runs when the child is about to send its first request (accounting covers the load only). */
  async run (job: Omit<LoadJob, 'id'>, onStarted?: () => Promise<void>): Promise<LoadResult> {
    const id = this.nextId++
    return await new Promise<LoadResult>((resolve, reject) => {
      this.pending.set(id, { ...(onStarted !== undefined && { onStarted }), starting: Promise.resolve(), resolve, reject })
      this.child.send({ type: 'job', job: { ...job, id } } satisfies ParentMessage)
    })
  }

  close (): void {
    this.child.send({ type: 'exit' } satisfies ParentMessage)
  }
}

/**
 * The RSS child runs compiled JavaScript, as production does (`node dist/...`): under tsx the
 * same process carries ~90 MB of transform and source-map state that a deployment never has.
 */
function compileRssChild (): string {
  const outDir = path.join(HERE, '..', 'node_modules', '.cache', 'chartcast-bench')
  rmSync(outDir, { recursive: true, force: true })
  execFileSync(process.execPath, [path.join(HERE, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(HERE, 'tsconfig.rss.json')], { stdio: 'inherit' })
  // src/db finds its migrations two levels up from itself.
  symlinkSync(path.join(HERE, '..', 'migrations'), path.join(outDir, 'migrations'))
  return path.join(outDir, 'bench', 'rss.js')
}

async function rssChild (script: string, job: RssJob): Promise<RssResult> {
  const child = fork(script, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return await new Promise<RssResult>((resolve, reject) => {
    let result: RssResult | null = null
    child.once('message', (message) => { result = message as RssResult })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (result !== null) resolve(result)
      else reject(new Error(`rss ${job.mode} child exited with ${code} and no result`))
    })
    child.send(job)
  })
}

function post<T> (session: Session, method: string, params: object = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    session.post(method, params, (error, result) => { if (error !== null) reject(error); else resolve(result as T) })
  })
}

interface Slice extends LoadResult { serverCpuMs: number, wallMs: number }

/**
 * Runs a load job while measuring this process (the servers): its CPU use and, with a file,
 * a CPU profile. Both start when the client sends its first request; the client is not in it.
 */
async function measured (client: LoadClient, job: Omit<LoadJob, 'id'>, file: string | null): Promise<Slice> {
  let session: Session | null = null
  let cpu = process.cpuUsage()
  let started = performance.now()
  const result = await client.run(job, async () => {
    cpu = process.cpuUsage()
    started = performance.now()
    if (file === null) return
    session = new Session()
    session.connect()
    await post(session, 'Profiler.enable')
    await post(session, 'Profiler.setSamplingInterval', { interval: 100 })
    await post(session, 'Profiler.start')
  })
  const used = process.cpuUsage(cpu)
  const wallMs = performance.now() - started
  if (session !== null) {
    const active: Session = session
    const { profile } = await post<{ profile: object }>(active, 'Profiler.stop')
    mkdirSync(path.dirname(file!), { recursive: true })
    writeFileSync(file!, JSON.stringify(profile))
    active.disconnect()
  }
  return { ...result, serverCpuMs: (used.user + used.system) / 1000, wallMs }
}

/** Merges the slices of one phase: req/s is all requests over all measured time; percentiles from the merged histogram. */
function summarise (name: PhaseName, slices: Slice[], expectedStatus: number): PhaseResult {
  const statusCodes: Record<string, number> = {}
  const histogram = new Map<number, number>()
  let seconds = 0
  let errors = 0
  let timeouts = 0
  let maxMs = 0
  let serverCpuMs = 0
  let wallMs = 0
  let clientCpu = 0
  for (const slice of slices) {
    for (const [code, count] of Object.entries(slice.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count
    for (const [bucket, count] of slice.histogram) histogram.set(bucket, (histogram.get(bucket) ?? 0) + count)
    seconds += slice.seconds
    errors += slice.errors
    timeouts += slice.timeouts
    maxMs = Math.max(maxMs, slice.maxMs)
    serverCpuMs += slice.serverCpuMs
    wallMs += slice.wallMs
    clientCpu += slice.clientCpuPercent * slice.seconds
  }
  const requests = Object.values(statusCodes).reduce((a, b) => a + b, 0)
  const buckets = [...histogram].sort((a, b) => a[0] - b[0])
  const recorded = buckets.reduce((a, [, c]) => a + c, 0)
  const percentile = (p: number): number => {
    const rank = Math.ceil(recorded * p)
    let seen = 0
    for (const [bucket, count] of buckets) {
      seen += count
      if (seen >= rank) return Math.round((bucket + 1) * BUCKET_MS * 100) / 100
    }
    return maxMs
  }
  const expected = statusCodes[String(expectedStatus)] ?? 0
  const unexpected = requests - expected + errors + timeouts
  if (unexpected > 0) failures.push(`${name}: ${unexpected} unexpected responses/errors (status codes ${JSON.stringify(statusCodes)}, errors ${errors}, timeouts ${timeouts})`)
  return {
    requests,
    seconds: Math.round(seconds * 100) / 100,
    slices: slices.length,
    rps: Math.round(requests / seconds),
    p50: percentile(0.5),
    p99: percentile(0.99),
    maxMs: Math.round(maxMs * 100) / 100,
    statusCodes,
    expectedStatus,
    unexpected,
    ratio: null,
    serverCpuPercent: Math.round(serverCpuMs / wallMs * 100),
    clientCpuPercent: Math.round(clientCpu / seconds)
  }
}

/** One real request per kind before measuring: status and body must be right, or the numbers mean nothing. */
async function verifySample (url: string, item: LoadItem, expectedStatus: number, check: (body: string, headers: Headers) => boolean, what: string): Promise<void> {
  const response = await fetch(url + item.path, { headers: item.headers })
  const body = await response.text()
  if (response.status !== expectedStatus || !check(body, response.headers)) {
    throw new Error(`${what}: expected ${expectedStatus}, got ${response.status} ${body.slice(0, 300)}`)
  }
}

/**
 * The bare route. With `headers`, it also sends the response headers a spec 200 carries (ETag,
 * Cache-Control, Vary, X-Poll-Interval): a diagnostic phase that shows what those protocol
 * headers alone cost on this machine (server, kernel and load generator), with no license check.
 */
async function startBaseline (bodies: Map<string, string>, headers?: Map<string, Record<string, string>>): Promise<{ server: FastifyInstance, url: string }> {
  const server = Fastify()
  server.get<{ Params: { name: string } }>('/channels/:name/spec', async (request, reply) => {
    if (headers !== undefined) reply.headers(headers.get(request.params.name)!)
    return await reply.type('application/json; charset=utf-8').send(bodies.get(request.params.name))
  })
  await server.listen({ port: 0, host: '127.0.0.1' })
  const address = server.server.address()
  if (address === null || typeof address === 'string') throw new Error('no listening address')
  return { server, url: `http://127.0.0.1:${address.port}` }
}

function heads (bench: BenchApp): Map<string, CompiledSpec> {
  const out = new Map<string, CompiledSpec>()
  for (let c = 0; c < CHANNELS; c++) {
    const head = bench.app.specCache.get(channelName(c))?.head
    if (head === undefined || head === null) throw new Error(`channel ${channelName(c)} has no head after seeding`)
    out.set(channelName(c), head)
  }
  return out
}

async function runDriver (driver: 'pglite' | 'postgres', databaseUrl: string | null, keyPair: LicenseKeyPair, authSecret: string, licenses: MintedLicense[]): Promise<{ run: DriverRun, bench: BenchApp }> {
  log(`\n== ${driver}: seeding ${CHANNELS} channels x ${RELEASES_PER_CHANNEL} releases (channels and promotions through the API) ...`)
  const bench = await startBenchApp({ databaseUrl, keyPair, authSecret })
  const seedStarted = Date.now()
  await seed(bench, CHANNELS, RELEASES_PER_CHANNEL)
  const seedSeconds = (Date.now() - seedStarted) / 1000
  log(`   seeded in ${seedSeconds.toFixed(1)} s`)
  const url = await bench.listen()
  const compiled = heads(bench)
  const bodies = new Map([...compiled].map(([name, head]) => [name, head.body]))

  const specItems: LoadItem[] = licenses.map((l) => ({ path: `/channels/${l.channel}/spec`, headers: { authorization: `Bearer ${l.token}` } }))
  const notModifiedItems: LoadItem[] = licenses.map((l) => ({ path: `/channels/${l.channel}/spec`, headers: { authorization: `Bearer ${l.token}`, 'if-none-match': compiled.get(l.channel)!.etag } }))
  const operatorItems: LoadItem[] = licenses.map((l) => ({ path: '/api/v1/operator/channel', headers: { authorization: 'Basic ' + Buffer.from(`license:${l.token}`).toString('base64') } }))

  const baseline = await startBaseline(bodies)
  const specHeaders = new Map([...compiled].map(([name, head]) => [name, { etag: head.etag, 'cache-control': 'private, no-cache', vary: 'Authorization, Chartcast-Applied', 'x-poll-interval': String(head.pollIntervalSeconds) }]))
  const baselineHeaders = await startBaseline(bodies, specHeaders)
  const pressureBefore = cpuPressure()
  log(`   CPU pressure before: ${pressureBefore ?? '?'}% (busiest processes: ${otherLoad()})`)
  const client = new LoadClient()
  client.items('spec', specItems)
  client.items('notModified', notModifiedItems)
  client.items('operator', operatorItems)
  const phases: DriverRun['phases'] = {}
  try {
    // Cold: every license seen for the first time (signature verification), then it is cached.
    log(`   phase 2 cold: first pass over ${LICENSES} licenses ...`)
    phases.specCold = summarise('specCold', [await measured(client, { url, connections: CONNECTIONS, duration: DURATION, amount: LICENSES, items: 'spec' }, null)], 200)
    const sample = 0
    await verifySample(baseline.url, specItems[sample]!, 200, (body) => body === compiled.get(licenses[sample]!.channel)!.body, 'baseline sample')
    await verifySample(baselineHeaders.url, specItems[sample]!, 200, (body, headers) => body === compiled.get(licenses[sample]!.channel)!.body && headers.get('etag') === compiled.get(licenses[sample]!.channel)!.etag, 'baseline + headers sample')
    await verifySample(url, specItems[sample]!, 200, (body, headers) => body === compiled.get(licenses[sample]!.channel)!.body && headers.get('etag') === compiled.get(licenses[sample]!.channel)!.etag, 'spec sample')
    await verifySample(url, notModifiedItems[sample]!, 304, (body) => body === '', '304 sample')
    await verifySample(url, operatorItems[sample]!, 200, (body) => body === compiled.get(licenses[sample]!.channel)!.operatorBody, 'operator sample')

    const plan: Array<{ name: PhaseName, url: string, items: string, expected: number }> = [
      { name: 'baseline', url: baseline.url, items: 'spec', expected: 200 },
      { name: 'baselineHeaders', url: baselineHeaders.url, items: 'spec', expected: 200 },
      { name: 'spec', url, items: 'spec', expected: 200 },
      { name: 'notModified', url, items: 'notModified', expected: 304 },
      { name: 'operator', url, items: 'operator', expected: 200 }
    ]
    log(`   warm-up ${WARMUP_SECONDS} s per phase, then phases 1-4 as ${SLICES} interleaved slices of ${fmt(DURATION / SLICES, 1)} s each ...`)
    for (const step of plan) await client.run({ url: step.url, connections: CONNECTIONS, duration: WARMUP_SECONDS, items: step.items })
    const slices = new Map<PhaseName, Slice[]>(plan.map((step) => [step.name, []]))
    for (let round = 0; round < SLICES; round++) {
      // Rotate the order so no phase always runs right after the same neighbour.
      for (let k = 0; k < plan.length; k++) {
        const step = plan[(k + round) % plan.length]!
        const file = PROFILE ? path.join(HERE, 'results', `phase-${driver}-${step.name}-${round}.cpuprofile`) : null
        slices.get(step.name)!.push(await measured(client, { url: step.url, connections: CONNECTIONS, duration: DURATION / SLICES, items: step.items }, file))
      }
    }
    for (const step of plan) phases[step.name] = summarise(step.name, slices.get(step.name)!, step.expected)
    // Latency without the queue: at 100 connections a request waits behind up to 99 others, on
    // a server sharing 2 cores with the load generator, so p99 mostly measures that queue.
    log(`   phase 2 again with ${FEW_CONNECTIONS} connections (latency without the queue) ...`)
    phases.specFewConnections = summarise('specFewConnections', [await measured(client, { url, connections: FEW_CONNECTIONS, duration: DURATION, items: 'spec' }, null)], 200)
  } finally {
    client.close()
    await baseline.server.close()
    await baselineHeaders.server.close()
  }
  const pressureAfter = cpuPressure()
  log(`   CPU pressure after: ${pressureAfter ?? '?'}%`)
  const base = phases.baseline!.rps
  // The few-connections phase is about latency; its req/s is not comparable to the others.
  for (const [name, result] of Object.entries(phases)) if (name !== 'specFewConnections') result.ratio = Math.round(result.rps / base * 1000) / 1000
  return { run: { driver, seedSeconds, phases, cpuPressure: { before: pressureBefore, after: pressureAfter } }, bench }
}

interface ReplicaResult { rounds: number, medianMs: number, maxMs: number, samplesMs: number[] }

/**
 * Replica convergence: a second instance on the same PostgreSQL database. The clock starts
 * when the promotion request is sent to the first instance (so it includes the commit) and
 * stops when the second one serves the new version over HTTP; polled back to back.
 */
async function replicaConvergence (first: BenchApp, databaseUrl: string, keyPair: LicenseKeyPair, authSecret: string, license: MintedLicense): Promise<ReplicaResult> {
  const second = await startBenchApp({ databaseUrl, keyPair, authSecret })
  try {
    const secondUrl = await second.listen()
    const samples: number[] = []
    for (let round = 0; round < REPLICA_ROUNDS; round++) {
      const version = `${CHANNELS + 1}.${round}.0`
      const started = performance.now()
      const promoted = publishAndPromote(first, license.channel, version)
      let served = false
      while (!served) {
        const response = await fetch(`${secondUrl}/channels/${license.channel}/spec`, { headers: { authorization: `Bearer ${license.token}` } })
        const body = await response.text()
        if (response.status !== 200) throw new Error(`second replica answered ${response.status}: ${body.slice(0, 200)}`)
        served = (JSON.parse(body) as { version: string }).version === version
        if (performance.now() - started > 10_000) throw new Error(`second replica did not serve ${version} within 10 s`)
      }
      samples.push(Math.round((performance.now() - started) * 100) / 100)
      await promoted
    }
    const sorted = [...samples].sort((a, b) => a - b)
    return { rounds: REPLICA_ROUNDS, medianMs: sorted[Math.floor(sorted.length / 2)]!, maxMs: sorted[sorted.length - 1]!, samplesMs: samples }
  } finally {
    await second.close()
  }
}

async function measureRss (script: string, databaseUrl: string | null, keyPair: LicenseKeyPair, authSecret: string, channels: number, releasesPerChannel: number): Promise<RssResult & { seedSeconds: number }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'chartcast-bench-rss-'))
  const throwaway = databaseUrl === null ? null : await createThrowawayDatabase(databaseUrl)
  try {
    const job: RssJob = { mode: 'seed', databaseUrl: throwaway?.url ?? null, dataDir, channels, releasesPerChannel, keyPair, authSecret }
    const seeded = await rssChild(script, job)
    const served = await rssChild(script, { ...job, mode: 'serve' })
    return { ...served, seedSeconds: seeded.seedSeconds ?? 0 }
  } finally {
    await throwaway?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const fmt = (n: number | null | undefined, digits = 2): string => n === null || n === undefined ? '-' : n.toFixed(digits)

const PHASE_LABELS: Record<PhaseName, string> = {
  baseline: '1 baseline (bare fastify)',
  baselineHeaders: '1b baseline + spec headers',
  specCold: '2 spec 200, cold (1st pass)',
  spec: '2 spec 200 (cached license)',
  specFewConnections: '2 with 10 connections',
  notModified: '3 spec 304 (If-None-Match)',
  operator: '4 operator (Basic auth)'
}

function printRun (run: DriverRun): void {
  log(`\n${run.driver}: ${CONNECTIONS} connections, ${DURATION} s per phase, ${LICENSES} licenses round-robin over ${CHANNELS} channels`)
  log('phase                           req/s   p50 ms   p99 ms   max ms   unexpected   ratio   server CPU   client CPU')
  for (const name of ['baseline', 'baselineHeaders', 'specCold', 'spec', 'specFewConnections', 'notModified', 'operator'] as PhaseName[]) {
    const p = run.phases[name]
    if (p === undefined) continue
    log(`${PHASE_LABELS[name].padEnd(29)} ${String(p.rps).padStart(7)} ${fmt(p.p50).padStart(8)} ${fmt(p.p99).padStart(8)} ${fmt(p.maxMs).padStart(8)} ${String(p.unexpected).padStart(12)} ${fmt(p.ratio, 3).padStart(7)} ${(p.serverCpuPercent + '%').padStart(12)} ${(p.clientCpuPercent + '%').padStart(12)}`)
  }
}

interface Verdict { target: string, value: string, pass: boolean }

function verdicts (run: DriverRun): Verdict[] {
  const p = run.phases
  return [
    { target: `[${run.driver}] phase 2 ratio >= ${TARGETS.specRatio}`, value: fmt(p.spec!.ratio, 3), pass: p.spec!.ratio! >= TARGETS.specRatio },
    { target: `[${run.driver}] phase 3 ratio >= ${TARGETS.notModifiedRatio}`, value: fmt(p.notModified!.ratio, 3), pass: p.notModified!.ratio! >= TARGETS.notModifiedRatio },
    { target: `[${run.driver}] phase 4 ratio >= ${TARGETS.operatorRatio}`, value: fmt(p.operator!.ratio, 3), pass: p.operator!.ratio! >= TARGETS.operatorRatio },
    { target: `[${run.driver}] phase 2 p99 <= ${TARGETS.specP99Ms} ms`, value: `${fmt(p.spec!.p99)} ms`, pass: p.spec!.p99 <= TARGETS.specP99Ms }
  ]
}

async function main (): Promise<void> {
  const started = Date.now()
  log(`chartcast bench: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${DURATION} s per phase`)
  log(`RATE_LIMIT_SPEC=${BENCH_RATE_LIMIT_SPEC} per license per minute: the limiter runs on every pull but never refuses`)
  log('load generator: autocannon in a child process (the server keeps a core of its own)')

  const keyPair = await generateLicenseKeyPair('ES256')
  const authSecret = randomBytes(32).toString('hex')
  const mintStarted = Date.now()
  const licenses = await mintLicenses(keyPair, LICENSES, CHANNELS)
  log(`minted ${LICENSES} ES256 licenses in ${((Date.now() - mintStarted) / 1000).toFixed(1)} s`)

  const runs: DriverRun[] = []
  let replica: ReplicaResult | null = null
  const rss: Record<string, RssResult & { seedSeconds: number, emptyRssMb: number, emptyHeapUsedMb: number }> = {}

  {
    const { run, bench } = await runDriver('pglite', null, keyPair, authSecret, licenses)
    await bench.close()
    runs.push(run)
    printRun(run)
  }
  if (DATABASE_URL !== null) {
    const throwaway = await createThrowawayDatabase(DATABASE_URL)
    try {
      const { run, bench } = await runDriver('postgres', throwaway.url, keyPair, authSecret, licenses)
      try {
        runs.push(run)
        printRun(run)
        log(`\nreplica convergence: ${REPLICA_ROUNDS} promotions on instance A, polling instance B on the same database ...`)
        replica = await replicaConvergence(bench, throwaway.url, keyPair, authSecret, licenses[0]!)
        log(`   median ${replica.medianMs} ms, max ${replica.maxMs} ms`)
      } finally {
        await bench.close()
      }
    } finally {
      await throwaway.drop()
    }
  } else {
    log('\nDATABASE_URL not set: PostgreSQL run and replica convergence skipped')
  }

  if (MEASURE_RSS) {
    log(`\nRSS: ${RSS_CHANNELS} channels x ${RSS_RELEASES} releases vs an almost empty catalogue, each in a fresh server process ...`)
    const rssScript = compileRssChild()
    const drivers: Array<[string, string | null]> = [['pglite', null], ...(DATABASE_URL !== null ? [['postgres', DATABASE_URL] as [string, string]] : [])]
    for (const [driver, databaseUrl] of drivers) {
      const full = await measureRss(rssScript, databaseUrl, keyPair, authSecret, RSS_CHANNELS, RSS_RELEASES)
      const empty = await measureRss(rssScript, databaseUrl, keyPair, authSecret, 1, 1)
      rss[driver] = { ...full, emptyRssMb: empty.rssMb, emptyHeapUsedMb: empty.heapUsedMb }
      log(`   ${driver === 'pglite' ? 'embedded PGlite (on disk)' : 'PostgreSQL'}: RSS ${full.rssMb} MB (heap ${full.heapUsedMb} MB, external ${full.externalMb} MB); ` +
        `same server with 1 channel x 1 release: ${empty.rssMb} MB (heap ${empty.heapUsedMb} MB)`)
    }
  }

  log('\nhostile bodies: the worst 1 MiB JSON / 256 KiB YAML we could construct (bench/hostile-bodies.ts) ...')
  const hostileBodies: HostileBodyResult = await measureHostileBodies(log)
  log(`   worst body: ${hostileBodies.worstParseCpuMs} ms CPU to parse (median; slowest run ${hostileBodies.worstParseCpuMaxMs} ms); longest event-loop stall over HTTP ${hostileBodies.worstLoopStallMs} ms; ` +
    `server's nodejs_eventloop_lag_max_seconds up to ${hostileBodies.metricLagMaxMs} ms`)
  for (const row of hostileBodies.rows) {
    if (row.unauthenticated.status !== 401) failures.push(`hostile body ${row.type} ${row.body}: ${row.unauthenticated.status} without a token, expected 401`)
  }

  const all: Verdict[] = runs.flatMap(verdicts)
  all.push({ target: `worst hostile body parses in <= ${HOSTILE_BODY_TARGET_MS} ms CPU`, value: `${hostileBodies.worstParseCpuMs} ms`, pass: hostileBodies.worstParseCpuMs <= HOSTILE_BODY_TARGET_MS })
  for (const [driver, r] of Object.entries(rss)) all.push({ target: `[${driver}] RSS with ${RSS_CHANNELS} x ${RSS_RELEASES} <= ${TARGETS.rssMb} MB`, value: `${r.rssMb} MB`, pass: r.rssMb <= TARGETS.rssMb })
  if (replica !== null) all.push({ target: `[postgres] replica serves a promotion within ${TARGETS.replicaMs} ms`, value: `max ${replica.maxMs} ms`, pass: replica.maxMs <= TARGETS.replicaMs })

  log('\ntargets')
  for (const v of all) log(`  ${v.pass ? 'PASS' : 'MISS'}  ${v.target.padEnd(55)} ${v.value}`)

  const out = {
    date: new Date().toISOString(),
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryMb: Math.round(os.totalmem() / 1_048_576) },
    settings: {
      durationSeconds: DURATION, warmupSeconds: WARMUP_SECONDS, connections: CONNECTIONS, channels: CHANNELS, releasesPerChannel: RELEASES_PER_CHANNEL, licenses: LICENSES,
      rateLimitSpec: BENCH_RATE_LIMIT_SPEC, loadGenerator: 'autocannon in a child process', licenseAlgorithm: 'ES256'
    },
    runs,
    replica,
    rss,
    hostileBodies,
    targets: TARGETS,
    verdicts: all,
    failures,
    totalSeconds: (Date.now() - started) / 1000
  }
  mkdirSync(path.join(HERE, 'results'), { recursive: true })
  writeFileSync(path.join(HERE, 'results', 'latest.json'), JSON.stringify(out, null, 2) + '\n')
  log(`\nwrote bench/results/latest.json (${out.totalSeconds.toFixed(0)} s)`)
  if (failures.length > 0) {
    for (const f of failures) log(`ERROR ${f}`)
    process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})

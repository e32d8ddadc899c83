/**
 * `npm run bench`: the hot-path benchmark. See bench/README.md for what each phase means.
 *
 *   BENCH_DURATION=2 npm run bench                       # smoke run (seconds per phase, default 10)
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench
 *                                                        # also PostgreSQL, replica convergence, fleet flush
 *
 * Phases 1-4 and the variants (bench/variants.ts: phase 2 against another server instance)
 * run as interleaved slices; then the fixed-rate pass, replica convergence, the fleet at scale
 * (bench/fleet.ts), memory (bench/rss.ts) and the hostile bodies.
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
  BENCH_RATE_LIMIT_SPEC, channelName, createThrowawayDatabase, mintLicenses, publishAndPromote, releaseVersion, seed, startBenchApp,
  type BenchApp, type MintedLicense
} from './lib.js'
import { BUCKET_MS, type LoadItem, type LoadJob, type LoadMessage, type LoadResult, type ParentMessage } from './load.js'
import type { RssJob, RssResult } from './rss.js'
import type { FleetCommand, FleetMemory, FleetReply } from './fleet.js'
import { selectedVariants, type BenchVariant, type VariantContext } from './variants.js'
import { selectionNanoseconds } from './rollouts-setup.js'
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
/** BENCH_SPEC=0 skips phases 1-4, the variants and replica convergence (to run only the fleet or memory). */
const MEASURE_SPEC = process.env.BENCH_SPEC !== '0'
/** BENCH_HOSTILE=0 skips the hostile bodies (about a minute). */
const MEASURE_HOSTILE = process.env.BENCH_HOSTILE !== '0'
const LICENSES = 10_000
const RSS_CHANNELS = 100
const RSS_RELEASES = 2_000
const WARMUP_SECONDS = 1
/** Each phase's time is split into slices run round-robin with the other phases (see README). */
const SLICES = Math.max(1, Math.round(DURATION / 2))
const REPLICA_ROUNDS = 10
/** One million deployments polling once a minute. */
const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? '16700')
/** BENCH_FLEET=0 skips the fleet at scale; BENCH_FLEET_DEPLOYMENTS=100000 for a quick run. */
const MEASURE_FLEET = process.env.BENCH_FLEET !== '0'
const FLEET_DEPLOYMENTS = Number(process.env.BENCH_FLEET_DEPLOYMENTS ?? '1000000')
/** Seconds of phase-2 load on the fleet server before and after its flush. */
const FLEET_QUIET_SECONDS = Math.max(3, DURATION)
const VARIANTS = selectedVariants()

const TARGETS = {
  /** phase 2 and 4 against phase 1b (the same bytes and headers, no license check); phase 3 against phase 1 */
  specRatio: 0.90,
  notModifiedRatio: 0.95,
  operatorRatio: 0.85,
  /** p99 of phase 2 at FIXED_RATE offered */
  specP99Ms: 10,
  rssMb: 200,
  replicaMs: 1000,
  fleetRssMb: 512,
  fleetFlushSeconds: 30,
  fleetDuringFlushRatio: 0.80
}

if (!Number.isFinite(DURATION) || DURATION <= 0) throw new Error('BENCH_DURATION must be a positive number of seconds')

/** The fixed phases, plus one per variant (its name). */
type PhaseName = 'baseline' | 'baselineHeaders' | 'specCold' | 'spec' | 'specFewConnections' | 'specFixedRate' | 'notModified' | 'operator' | (string & {})

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
  /** req/s over the phase it is compared with (`against`), measured in the same slices. */
  ratio: number | null
  against: PhaseName | null
  /** req/s over phase 1's. */
  vsBaseline: number | null
  /** The fixed-rate pass: what was offered (req/s). */
  offeredRps?: number
  /** CPU this process (the servers) used during the phase, in % of one core. */
  serverCpuPercent: number
  /** CPU the load generator used, in % of one core. */
  clientCpuPercent: number
}

interface DriverRun {
  driver: 'pglite' | 'postgres'
  seedSeconds: number
  /** The variants measured (their phases are in `phases` under their names). */
  variants: Array<{ name: string, label: string, against: string, target: BenchVariant['target'], seedSeconds: number | null }>
  phases: Partial<Record<PhaseName, PhaseResult>>
  /** CPU pressure (PSI some avg60, %) before and after the measured phases. */
  cpuPressure: { before: number | null, after: number | null }
  /**
   * selectSpec alone, ns per pull, on the rollouts variant's instance and on its control, and
   * phase 2's server CPU per request (ns) to weigh the difference against.
   */
  selection?: { withRolloutsNs: number, withoutNs: number, specServerNsPerRequest: number }
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

  /** Ends the running job now (its result still arrives). */
  stop (): void {
    this.child.send({ type: 'stop' } satisfies ParentMessage)
  }

  close (): void {
    this.child.send({ type: 'exit' } satisfies ParentMessage)
  }
}

/**
 * The memory children (RSS, fleet) run compiled JavaScript, as production does (`node dist/...`):
 * under tsx the same process carries ~90 MB of transform and source-map state that a deployment
 * never has. Compiled into bench/results/build (git-ignored), inside the project so the
 * compiled files find node_modules.
 */
let compiled: { rss: string, fleet: string } | null = null
function compileChildren (): { rss: string, fleet: string } {
  if (compiled !== null) return compiled
  const outDir = path.join(HERE, 'results', 'build')
  rmSync(outDir, { recursive: true, force: true })
  execFileSync(process.execPath, [path.join(HERE, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(HERE, 'tsconfig.rss.json')], { stdio: 'inherit' })
  // src/db finds its migrations two levels up from itself.
  symlinkSync(path.join(HERE, '..', 'migrations'), path.join(outDir, 'migrations'))
  compiled = { rss: path.join(outDir, 'bench', 'rss.js'), fleet: path.join(outDir, 'bench', 'fleet.js') }
  return compiled
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
    against: null,
    vsBaseline: null,
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
 * The bare route. With `headers`, it also sends the response headers chartcast's spec 200
 * carries (captured from a real answer per channel: ETag, Cache-Control, Vary, X-Poll-Interval,
 * Chartcast-Revision): phase 1b, the same bytes with the same headers and no license check,
 * the fair limit phases 2 and 4 are compared with.
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

/** Headers of a spec 200 that are not transport (the baseline sets those itself). */
const TRANSPORT_HEADERS = new Set(['date', 'connection', 'keep-alive', 'content-length', 'content-type', 'transfer-encoding'])

/** What a real spec 200 of each channel carries beyond its body, so phase 1b sends the very same. */
async function specHeadersByChannel (url: string, licenses: MintedLicense[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>()
  for (let c = 0; c < CHANNELS; c++) {
    const license = licenses.find((l) => l.channel === channelName(c))!
    const response = await fetch(`${url}/channels/${license.channel}/spec`, { headers: { authorization: `Bearer ${license.token}` } })
    await response.text()
    if (response.status !== 200) throw new Error(`spec pull for ${license.channel} answered ${response.status}`)
    const headers: Record<string, string> = {}
    response.headers.forEach((value, name) => { if (!TRANSPORT_HEADERS.has(name)) headers[name] = value })
    out.set(license.channel, headers)
  }
  return out
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

/** A variant's server: a second instance on the main one's database, or on a fresh one seeded the same way. */
interface VariantServer { variant: BenchVariant, bench: BenchApp, url: string, items: string, seedSeconds: number | null, drop: () => Promise<void> }

async function startVariant (variant: BenchVariant, main: BenchApp, databaseUrl: string | null, context: VariantContext, keyPair: LicenseKeyPair, authSecret: string, client: LoadClient): Promise<VariantServer> {
  const env = variant.env === undefined ? {} : await variant.env(context)
  const options = { keyPair, authSecret, env, ...(variant.recordCheckins === false && { recordCheckins: false }) }
  let bench: BenchApp
  let seedSeconds: number | null = null
  let throwaway: { url: string, drop: () => Promise<void> } | null = null
  if (variant.database === 'shared') {
    // PostgreSQL: a replica with its own pool; PGlite: the same embedded instance.
    bench = databaseUrl === null
      ? await startBenchApp({ ...options, databaseUrl: null, database: main.database })
      : await startBenchApp({ ...options, databaseUrl })
  } else {
    throwaway = databaseUrl === null ? null : await createThrowawayDatabase(DATABASE_URL!)
    bench = await startBenchApp({ ...options, databaseUrl: throwaway?.url ?? null })
    const started = Date.now()
    await seed(bench, CHANNELS, RELEASES_PER_CHANNEL)
    seedSeconds = (Date.now() - started) / 1000
  }
  await variant.setup?.(bench, context)
  const url = await bench.listen()
  const items = variant.items === undefined ? 'spec' : `variant:${variant.name}`
  if (variant.items !== undefined) client.items(items, variant.items(context))
  return {
    variant,
    bench,
    url,
    items,
    seedSeconds,
    drop: async () => {
      await bench.close()
      await throwaway?.drop()
    }
  }
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
  const baselineHeaders = await startBaseline(bodies, await specHeadersByChannel(url, licenses))
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'chartcast-bench-variant-'))
  const context: VariantContext = {
    driver,
    licenses,
    channels: Array.from({ length: CHANNELS }, (_, c) => channelName(c)),
    releasesPerChannel: RELEASES_PER_CHANNEL,
    releaseVersion,
    specItems,
    scratch
  }
  const client = new LoadClient()
  client.items('spec', specItems)
  client.items('notModified', notModifiedItems)
  client.items('operator', operatorItems)
  const variants: VariantServer[] = []
  const phases: DriverRun['phases'] = {}
  try {
    for (const variant of VARIANTS) {
      log(`   variant ${variant.name}: ${variant.database === 'shared' ? 'a second instance on the same database' : `its own database, seeded the same way`} ...`)
      variants.push(await startVariant(variant, bench, databaseUrl, context, keyPair, authSecret, client))
    }
    const pressureBefore = cpuPressure()
    log(`   CPU pressure before: ${pressureBefore ?? '?'}% (busiest processes: ${otherLoad()})`)
    // Cold: every license seen for the first time (signature verification), then it is cached.
    log(`   phase 2 cold: first pass over ${LICENSES} licenses ...`)
    phases.specCold = summarise('specCold', [await measured(client, { url, connections: CONNECTIONS, duration: DURATION, amount: LICENSES, items: 'spec' }, null)], 200)
    const sample = 0
    const sampleBody = compiled.get(licenses[sample]!.channel)!
    await verifySample(baseline.url, specItems[sample]!, 200, (body) => body === sampleBody.body, 'baseline sample')
    await verifySample(baselineHeaders.url, specItems[sample]!, 200, (body, headers) => body === sampleBody.body && headers.get('etag') === sampleBody.etag, 'baseline + headers sample')
    await verifySample(url, specItems[sample]!, 200, (body, headers) => body === sampleBody.body && headers.get('etag') === sampleBody.etag, 'spec sample')
    await verifySample(url, notModifiedItems[sample]!, 304, (body) => body === '', '304 sample')
    await verifySample(url, operatorItems[sample]!, 200, (body) => body === sampleBody.operatorBody, 'operator sample')

    const plan: Array<{ name: PhaseName, url: string, items: string, expected: number }> = [
      { name: 'baseline', url: baseline.url, items: 'spec', expected: 200 },
      { name: 'baselineHeaders', url: baselineHeaders.url, items: 'spec', expected: 200 },
      { name: 'spec', url, items: 'spec', expected: 200 },
      { name: 'notModified', url, items: 'notModified', expected: 304 },
      { name: 'operator', url, items: 'operator', expected: 200 }
    ]
    for (const v of variants) {
      const expected = v.variant.expectedStatus ?? 200
      const item = (v.variant.items?.(context) ?? specItems)[sample]!
      const check = v.variant.check ?? (v.variant.items === undefined && v.variant.database === 'shared' ? (body: string) => body === sampleBody.body : () => true)
      await verifySample(v.url, item, expected, check, `${v.variant.name} sample`)
      plan.push({ name: v.variant.name, url: v.url, items: v.items, expected })
    }
    log(`   warm-up ${WARMUP_SECONDS} s per phase, then ${plan.length} phases as ${SLICES} interleaved slices of ${fmt(DURATION / SLICES, 1)} s each ...`)
    // The variants' licenses are new to their servers: a first pass verifies them all, as phase 2 cold did.
    for (const v of variants) await client.run({ url: v.url, connections: CONNECTIONS, duration: DURATION, amount: LICENSES, items: v.items })
    for (const step of plan) await client.run({ url: step.url, connections: CONNECTIONS, duration: WARMUP_SECONDS, items: step.items })
    const slices = new Map<PhaseName, Slice[]>(plan.map((step) => [step.name, []]))
    // Before each slice every instance writes its pending check-ins, off the clock: a slice then
    // pays for the check-ins of its own instance (its flush timer may fire in it), not for those
    // the previous slice's instance left. On PGlite all instances' writes run on this thread, and
    // they landed in whichever slice came next (variants against their controls moved by 0.15
    // between runs of one build).
    const instances = [bench, ...variants.map((v) => v.bench)]
    const flushAll = async (): Promise<void> => { await Promise.all(instances.map(async (instance) => { await instance.app.checkins.flush() })) }
    for (let round = 0; round < SLICES; round++) {
      // Rotate the order so no phase always runs right after the same neighbour.
      for (let k = 0; k < plan.length; k++) {
        const step = plan[(k + round) % plan.length]!
        await flushAll()
        const file = PROFILE ? path.join(HERE, 'results', `phase-${driver}-${step.name}-${round}.cpuprofile`) : null
        slices.get(step.name)!.push(await measured(client, { url: step.url, connections: CONNECTIONS, duration: DURATION / SLICES, items: step.items }, file))
      }
    }
    for (const step of plan) phases[step.name] = summarise(step.name, slices.get(step.name)!, step.expected)
    // Latency without the queue: at 100 connections a request waits behind up to 99 others, on
    // a server sharing 2 cores with the load generator, so p99 mostly measures that queue.
    log(`   phase 2 again with ${FEW_CONNECTIONS} connections (latency without the queue) ...`)
    phases.specFewConnections = summarise('specFewConnections', [await measured(client, { url, connections: FEW_CONNECTIONS, duration: DURATION, items: 'spec' }, null)], 200)
    log(`   phase 2 at a fixed offered rate of ${FIXED_RATE} req/s (${CONNECTIONS} connections) ...`)
    phases.specFixedRate = { ...summarise('specFixedRate', [await measured(client, { url, connections: CONNECTIONS, duration: DURATION, overallRate: FIXED_RATE, items: 'spec' }, null)], 200), offeredRps: FIXED_RATE }
    const pressureAfter = cpuPressure()
    log(`   CPU pressure after: ${pressureAfter ?? '?'}%`)
    const rolloutsServer = variants.find((v) => v.variant.name === 'specRollouts')
    const controlServer = variants.find((v) => v.variant.name === 'specOwnControl')
    let selection: DriverRun['selection']
    if (rolloutsServer !== undefined && controlServer !== undefined && phases.spec !== undefined) {
      // Alternated, several times each, the lowest kept: the least disturbed by other work.
      const withRollouts: number[] = []
      const without: number[] = []
      for (let i = 0; i < 5; i++) {
        withRollouts.push(selectionNanoseconds(rolloutsServer.bench, licenses))
        without.push(selectionNanoseconds(controlServer.bench, licenses))
      }
      selection = {
        withRolloutsNs: Math.round(Math.min(...withRollouts)),
        withoutNs: Math.round(Math.min(...without)),
        specServerNsPerRequest: Math.round(phases.spec.serverCpuPercent / 100 / phases.spec.rps * 1e9)
      }
    }
    const ratio = (rps: number, against: PhaseName): number => Math.round(rps / phases[against]!.rps * 1000) / 1000
    const against: Partial<Record<PhaseName, PhaseName>> = { baselineHeaders: 'baseline', spec: 'baselineHeaders', notModified: 'baseline', operator: 'baselineHeaders', specCold: 'baselineHeaders' }
    for (const v of variants) against[v.variant.name] = v.variant.against
    // The few-connections and fixed-rate passes are about latency; their req/s is not a ratio.
    for (const [name, result] of Object.entries(phases)) {
      if (result === undefined || name === 'specFewConnections' || name === 'specFixedRate') continue
      result.vsBaseline = ratio(result.rps, 'baseline')
      const reference = against[name]
      if (reference !== undefined) {
        result.against = reference
        result.ratio = ratio(result.rps, reference)
      }
    }
    return {
      run: {
        driver,
        seedSeconds,
        variants: variants.map((v) => ({ name: v.variant.name, label: v.variant.label, against: v.variant.against, target: v.variant.target, seedSeconds: v.seedSeconds })),
        phases,
        cpuPressure: { before: pressureBefore, after: pressureAfter },
        ...(selection !== undefined && { selection })
      },
      bench
    }
  } finally {
    client.close()
    await baseline.server.close()
    await baselineHeaders.server.close()
    for (const v of variants) await v.drop()
    rmSync(scratch, { recursive: true, force: true })
  }
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

const PHASE_LABELS: Record<string, string> = {
  baseline: '1 baseline (bare fastify)',
  baselineHeaders: '1b baseline + spec headers',
  specCold: '2 spec 200, cold (1st pass)',
  spec: '2 spec 200 (cached license)',
  specFewConnections: '2 with 10 connections',
  specFixedRate: `2 at ${FIXED_RATE} req/s offered`,
  notModified: '3 spec 304 (If-None-Match)',
  operator: '4 operator (Basic auth)'
}
const SHORT: Record<string, string> = { baseline: '1', baselineHeaders: '1b', spec: '2' }

function printRun (run: DriverRun): void {
  log(`\n${run.driver}: ${CONNECTIONS} connections, ${DURATION} s per phase, ${LICENSES} licenses round-robin over ${CHANNELS} channels`)
  log('phase                             req/s   p50 ms   p99 ms   max ms  unexpected   ratio (vs)   vs 1  server CPU  client CPU')
  const labels = { ...PHASE_LABELS, ...Object.fromEntries(run.variants.map((v) => [v.name, v.label])) }
  const order = ['baseline', 'baselineHeaders', 'specCold', 'spec', 'specFewConnections', 'specFixedRate', 'notModified', 'operator', ...run.variants.map((v) => v.name)]
  for (const name of order) {
    const p = run.phases[name]
    if (p === undefined) continue
    const ratio = p.ratio === null ? '-' : `${fmt(p.ratio, 3)} (${SHORT[p.against!] ?? p.against})`
    log(`${(labels[name] ?? name).slice(0, 31).padEnd(31)} ${String(p.rps).padStart(7)} ${fmt(p.p50).padStart(8)} ${fmt(p.p99).padStart(8)} ${fmt(p.maxMs).padStart(8)} ${String(p.unexpected).padStart(11)} ${ratio.padStart(12)} ${fmt(p.vsBaseline, 3).padStart(6)} ${(p.serverCpuPercent + '%').padStart(11)} ${(p.clientCpuPercent + '%').padStart(11)}`)
  }
  if (run.selection !== undefined) {
    const { withRolloutsNs, withoutNs, specServerNsPerRequest } = run.selection
    const share = (withRolloutsNs - withoutNs) / specServerNsPerRequest * 100
    log(`selection alone (selectSpec, no HTTP): ${withRolloutsNs} ns per pull with 3 rollouts per channel, ${withoutNs} ns without; the difference is ${fmt(share, 2)}% of phase 2's server CPU per request (${fmt(specServerNsPerRequest / 1000, 1)} µs)`)
  }
}

interface Verdict { target: string, value: string, pass: boolean }

function verdicts (run: DriverRun): Verdict[] {
  const p = run.phases
  const d = `[${run.driver}]`
  const fixed = p.specFixedRate!
  // Reached: within 2% of what was offered (autocannon's per-second quotas round down per connection).
  const reached = fixed.rps >= fixed.offeredRps! * 0.98
  const out: Verdict[] = [
    { target: `${d} phase 2 >= ${TARGETS.specRatio} x phase 1b`, value: fmt(p.spec!.ratio, 3), pass: p.spec!.ratio! >= TARGETS.specRatio },
    { target: `${d} phase 3 >= ${TARGETS.notModifiedRatio} x phase 1`, value: fmt(p.notModified!.ratio, 3), pass: p.notModified!.ratio! >= TARGETS.notModifiedRatio },
    { target: `${d} phase 4 >= ${TARGETS.operatorRatio} x phase 1b`, value: fmt(p.operator!.ratio, 3), pass: p.operator!.ratio! >= TARGETS.operatorRatio },
    {
      target: `${d} phase 2 p99 <= ${TARGETS.specP99Ms} ms at ${FIXED_RATE} req/s offered`,
      value: `${fmt(fixed.p99)} ms at ${fixed.rps} req/s${reached ? '' : ' (rate not reached)'}`,
      pass: reached && fixed.p99 <= TARGETS.specP99Ms
    }
  ]
  for (const v of run.variants) {
    const r = p[v.name]
    if (r === undefined || v.target === null) continue
    if (v.target.kind === 'min') {
      const reference = SHORT[v.against] === undefined ? v.against : `phase ${SHORT[v.against]}`
      out.push({ target: `${d} ${v.label} >= ${v.target.ratio} x ${reference}`, value: fmt(r.ratio, 3), pass: r.ratio! >= v.target.ratio })
    } else {
      // The main server does what this variant leaves out: its cost is the main server's shortfall.
      const cost = 1 - p[v.against]!.rps / r.rps
      out.push({ target: `${d} cost of what "${v.label}" leaves out < ${v.target.cost * 100}%`, value: `${fmt(cost * 100, 1)}% (phase 2 = ${fmt(1 / r.ratio!, 3)} x it)`, pass: cost < v.target.cost })
    }
  }
  return out
}

interface FleetResult {
  driver: 'pglite' | 'postgres'
  deployments: number
  recordNsPerCall: number
  /** Settled (after GC) with every deployment pending; and before any was recorded. */
  memory: FleetMemory
  emptyMemory: FleetMemory
  /** The first flush inserts every row; the second (records made newer) updates every row. */
  insertFlush: { rows: number, seconds: number, cpuSeconds: number }
  updateFlush: { rows: number, seconds: number, cpuSeconds: number }
  /** A third flush (updates) while phase-2 pulls load the same server. */
  underLoad: { rows: number, flushSeconds: number, rpsDuring: number, rpsWithout: number, ratio: number, p99Ms: number, unexpected: number }
  /** The largest RSS the process reached, flushes included. */
  maxRssMb: number
}

class FleetChild {
  private readonly child
  private waiting: Array<{ resolve: (reply: FleetReply) => void, reject: (error: Error) => void }> = []
  constructor (script: string) {
    this.child = fork(script, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (reply: FleetReply) => {
      const next = this.waiting.shift()
      if (next === undefined) return
      if (reply.type === 'failed') next.reject(new Error(`fleet child: ${reply.error}`))
      else next.resolve(reply)
    })
    this.child.once('exit', (code) => {
      for (const w of this.waiting) w.reject(new Error(`fleet child exited with ${code}`))
      this.waiting = []
    })
  }

  async send<T extends FleetReply['type']> (command: FleetCommand, expect: T): Promise<Extract<FleetReply, { type: T }>> {
    const reply = await new Promise<FleetReply>((resolve, reject) => {
      this.waiting.push({ resolve, reject })
      this.child.send(command)
    })
    if (reply.type !== expect) throw new Error(`fleet child answered ${reply.type}, expected ${expect}`)
    return reply as Extract<FleetReply, { type: T }>
  }

  async exit (): Promise<void> {
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => { resolve() })
      this.child.send({ type: 'exit' } satisfies FleetCommand)
    })
  }
}

/**
 * 1,000,000 deployments through the recorder (bench/fleet.ts): the server's RSS holding them,
 * the flush into the database (inserts, then updates), and phase-2 throughput while a flush
 * runs, against the same run's throughput before and after it (from a 100 ms timeline).
 */
async function fleetScale (script: string, driver: 'pglite' | 'postgres', databaseUrl: string | null, keyPair: LicenseKeyPair, authSecret: string, licenses: MintedLicense[]): Promise<FleetResult> {
  const throwaway = databaseUrl === null ? null : await createThrowawayDatabase(databaseUrl)
  const fleet = new FleetChild(script)
  const client = new LoadClient()
  try {
    const started = await fleet.send({ type: 'start', databaseUrl: throwaway?.url ?? null, deployments: FLEET_DEPLOYMENTS, channels: CHANNELS, releasesPerChannel: 3, keyPair, authSecret }, 'started')
    log(`   ${started.pending} deployments pending: RSS ${started.memory.rssMb} MB (heap ${started.memory.heapUsedMb} MB; ${started.emptyMemory.rssMb} MB before recording), ${fmt(started.recordNsPerCall / 1000, 2)} µs per record(); largest RSS so far ${started.memory.maxRssMb} MB`)
    const insert = await fleet.send({ type: 'flush' }, 'flushed')
    log(`   flush of ${insert.rows} new deployments: ${fmt(insert.seconds, 1)} s (${fmt(insert.cpuSeconds, 1)} s CPU in the server); largest RSS so far ${insert.memory.maxRssMb} MB`)
    const again = await fleet.send({ type: 'record' }, 'recorded')
    log(`   recorded again (newer): RSS ${again.memory.rssMb} MB, largest so far ${again.memory.maxRssMb} MB`)
    const update = await fleet.send({ type: 'flush' }, 'flushed')
    log(`   flush of ${update.rows} changed deployments: ${fmt(update.seconds, 1)} s (${fmt(update.cpuSeconds, 1)} s CPU in the server); largest RSS so far ${update.memory.maxRssMb} MB`)
    await fleet.send({ type: 'record' }, 'recorded')
    const { url } = await fleet.send({ type: 'listen' }, 'listening')
    client.items('spec', licenses.map((l) => ({ path: `/channels/${l.channel}/spec`, headers: { authorization: `Bearer ${l.token}` } })))
    // Every license verified once, then a warm-up, before the measured run.
    await client.run({ url, connections: CONNECTIONS, duration: DURATION, amount: LICENSES, items: 'spec' })
    await client.run({ url, connections: CONNECTIONS, duration: WARMUP_SECONDS, items: 'spec' })
    log(`   phase 2 on that server: ${FLEET_QUIET_SECONDS} s, a flush of ${FLEET_DEPLOYMENTS} changed deployments, ${FLEET_QUIET_SECONDS} s ...`)
    let flushed: Extract<FleetReply, { type: 'flushed' }> | null = null
    const loaded = client.run({ url, connections: CONNECTIONS, duration: 3600, items: 'spec', timelineMs: 100 }, async () => {
      void (async () => {
        await sleep(FLEET_QUIET_SECONDS * 1000)
        flushed = await fleet.send({ type: 'flush' }, 'flushed')
        await sleep(FLEET_QUIET_SECONDS * 1000)
        client.stop()
      })().catch((error: unknown) => { failures.push(`fleet flush under load: ${String(error)}`); client.stop() })
    })
    const result = await loaded
    if (flushed === null) throw new Error('the flush under load did not finish')
    const during: Extract<FleetReply, { type: 'flushed' }> = flushed
    const { bucketMs, startedAtMs, counts } = result.timeline!
    let inside = 0; let insideMs = 0; let outside = 0; let outsideMs = 0
    counts.forEach((count, i) => {
      const from = startedAtMs + i * bucketMs
      const to = from + bucketMs
      // The first and the last second are ramp-up and stop; buckets cut by the flush's edges count for neither.
      if (from < startedAtMs + 1000 || i >= counts.length - 10) return
      if (from >= during.startedAtMs && to <= during.endedAtMs) { inside += count; insideMs += bucketMs } else if (to <= during.startedAtMs || from >= during.endedAtMs) { outside += count; outsideMs += bucketMs }
    })
    const rpsDuring = Math.round(inside / insideMs * 1000)
    const rpsWithout = Math.round(outside / outsideMs * 1000)
    const summary = summarise('fleetUnderLoad', [{ ...result, serverCpuMs: 0, wallMs: result.seconds * 1000 }], 200)
    const maxRssMb = during.memory.maxRssMb
    log(`   during the flush (${fmt(during.seconds, 1)} s): ${rpsDuring} req/s; before and after it: ${rpsWithout} req/s; ratio ${fmt(rpsDuring / rpsWithout, 3)}; largest RSS ${maxRssMb} MB`)
    return {
      driver,
      deployments: FLEET_DEPLOYMENTS,
      recordNsPerCall: Math.round(started.recordNsPerCall),
      memory: started.memory,
      emptyMemory: started.emptyMemory,
      insertFlush: { rows: insert.rows, seconds: insert.seconds, cpuSeconds: insert.cpuSeconds },
      updateFlush: { rows: update.rows, seconds: update.seconds, cpuSeconds: update.cpuSeconds },
      underLoad: { rows: during.rows, flushSeconds: during.seconds, rpsDuring, rpsWithout, ratio: Math.round(rpsDuring / rpsWithout * 1000) / 1000, p99Ms: summary.p99, unexpected: summary.unexpected },
      maxRssMb
    }
  } finally {
    client.close()
    await fleet.exit()
    await throwaway?.drop()
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

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
  let fleet: FleetResult | null = null

  if (MEASURE_SPEC) {
    const { run, bench } = await runDriver('pglite', null, keyPair, authSecret, licenses)
    await bench.close()
    runs.push(run)
    printRun(run)
  }
  if (MEASURE_SPEC && DATABASE_URL !== null) {
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
  } else if (MEASURE_SPEC) {
    log('\nDATABASE_URL not set: PostgreSQL run and replica convergence skipped')
  }

  if (MEASURE_FLEET) {
    const driver = DATABASE_URL === null ? 'pglite' : 'postgres'
    log(`\nfleet: ${FLEET_DEPLOYMENTS} deployments recorded in a fresh server process on ${driver} (bench/fleet.ts) ...`)
    if (DATABASE_URL === null) log('   (the flush targets are PostgreSQL\'s: set DATABASE_URL)')
    fleet = await fleetScale(compileChildren().fleet, driver, DATABASE_URL, keyPair, authSecret, licenses)
  }

  if (MEASURE_RSS) {
    log(`\nRSS: ${RSS_CHANNELS} channels x ${RSS_RELEASES} releases vs an almost empty catalogue, each in a fresh server process ...`)
    const rssScript = compileChildren().rss
    const drivers: Array<[string, string | null]> = [['pglite', null], ...(DATABASE_URL !== null ? [['postgres', DATABASE_URL] as [string, string]] : [])]
    for (const [driver, databaseUrl] of drivers) {
      const full = await measureRss(rssScript, databaseUrl, keyPair, authSecret, RSS_CHANNELS, RSS_RELEASES)
      const empty = await measureRss(rssScript, databaseUrl, keyPair, authSecret, 1, 1)
      rss[driver] = { ...full, emptyRssMb: empty.rssMb, emptyHeapUsedMb: empty.heapUsedMb }
      log(`   ${driver === 'pglite' ? 'embedded PGlite (on disk)' : 'PostgreSQL'}: RSS ${full.rssMb} MB (heap ${full.heapUsedMb} MB, external ${full.externalMb} MB` +
        `${full.wasmMemoryMb === undefined ? '' : `, PGlite's WebAssembly memory ${full.wasmMemoryMb} MB`}); same server with 1 channel x 1 release: ${empty.rssMb} MB (heap ${empty.heapUsedMb} MB)`)
    }
  }

  let hostileBodies: HostileBodyResult | null = null
  if (MEASURE_HOSTILE) {
    log('\nhostile bodies: the worst 1 MiB JSON / 256 KiB YAML we could construct (bench/hostile-bodies.ts) ...')
    hostileBodies = await measureHostileBodies(log)
    log(`   worst body: ${hostileBodies.worstParseCpuMs} ms CPU to parse (median; slowest run ${hostileBodies.worstParseCpuMaxMs} ms); longest event-loop stall over HTTP ${hostileBodies.worstLoopStallMs} ms; ` +
      `server's nodejs_eventloop_lag_max_seconds up to ${hostileBodies.metricLagMaxMs} ms`)
    for (const row of hostileBodies.rows) {
      if (row.unauthenticated.status !== 401) failures.push(`hostile body ${row.type} ${row.body}: ${row.unauthenticated.status} without a token, expected 401`)
    }
  }

  const all: Verdict[] = runs.flatMap(verdicts)
  if (hostileBodies !== null) all.push({ target: `worst hostile body parses in <= ${HOSTILE_BODY_TARGET_MS} ms CPU`, value: `${hostileBodies.worstParseCpuMs} ms`, pass: hostileBodies.worstParseCpuMs <= HOSTILE_BODY_TARGET_MS })
  for (const [driver, r] of Object.entries(rss)) {
    if (r.wasmMemoryMb === undefined) all.push({ target: `[${driver}] RSS with ${RSS_CHANNELS} x ${RSS_RELEASES} <= ${TARGETS.rssMb} MB`, value: `${r.rssMb} MB`, pass: r.rssMb <= TARGETS.rssMb })
    // PGlite reserves its WebAssembly memory up front and never returns it: the floor, stated.
    else all.push({ target: `[${driver}] RSS with ${RSS_CHANNELS} x ${RSS_RELEASES} <= ${TARGETS.rssMb} MB above the WASM floor`, value: `${r.rssMb} MB = ${r.wasmMemoryMb} MB WASM + ${fmt(r.rssMb - r.wasmMemoryMb, 1)} MB`, pass: r.rssMb - r.wasmMemoryMb <= TARGETS.rssMb })
  }
  if (fleet !== null) {
    const f = fleet
    const worstFlush = Math.max(f.insertFlush.seconds, f.updateFlush.seconds)
    all.push({ target: `[${f.driver}] RSS with ${f.deployments} deployments pending <= ${TARGETS.fleetRssMb} MB`, value: `${f.memory.rssMb} MB (largest ${f.maxRssMb} MB)`, pass: f.maxRssMb <= TARGETS.fleetRssMb })
    all.push({ target: `[${f.driver}] flush of ${f.deployments} changed deployments <= ${TARGETS.fleetFlushSeconds} s`, value: `${fmt(worstFlush, 1)} s (new ${fmt(f.insertFlush.seconds, 1)}, changed ${fmt(f.updateFlush.seconds, 1)})`, pass: worstFlush <= TARGETS.fleetFlushSeconds })
    all.push({ target: `[${f.driver}] phase 2 during that flush >= ${TARGETS.fleetDuringFlushRatio} x without`, value: `${fmt(f.underLoad.ratio, 3)} (${f.underLoad.rpsDuring} / ${f.underLoad.rpsWithout} req/s)`, pass: f.underLoad.ratio >= TARGETS.fleetDuringFlushRatio })
  }
  if (replica !== null) all.push({ target: `[postgres] replica serves a promotion within ${TARGETS.replicaMs} ms`, value: `max ${replica.maxMs} ms`, pass: replica.maxMs <= TARGETS.replicaMs })

  log('\ntargets')
  for (const v of all) log(`  ${v.pass ? 'PASS' : 'MISS'}  ${v.target.padEnd(70)} ${v.value}`)

  const out = {
    date: new Date().toISOString(),
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryMb: Math.round(os.totalmem() / 1_048_576) },
    settings: {
      durationSeconds: DURATION, warmupSeconds: WARMUP_SECONDS, connections: CONNECTIONS, channels: CHANNELS, releasesPerChannel: RELEASES_PER_CHANNEL, licenses: LICENSES,
      rateLimitSpec: BENCH_RATE_LIMIT_SPEC, loadGenerator: 'autocannon in a child process', licenseAlgorithm: 'ES256',
      fixedRate: FIXED_RATE, fleetDeployments: MEASURE_FLEET ? FLEET_DEPLOYMENTS : null, variants: VARIANTS.map((v) => v.name)
    },
    runs,
    replica,
    fleet,
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

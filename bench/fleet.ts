/**
 * Fleet scale: a server process holding 1,000,000 deployments' check-ins, run as a child of
 * run.ts (compiled JavaScript, like rss.ts, so its RSS is the server's alone).
 *
 * The check-ins go through `app.checkins.record`, the call the spec route makes for every
 * authorized pull, with one distinct deployment each (minting and sending 1,000,000 ES256
 * licenses would measure the load generator, not the recorder). The parent drives it:
 *
 *   start   opens the app (a small catalogue, so phase-2 pulls can be served), records N
 *           check-ins, GC, answers RSS and the record cost
 *   flush   writes everything pending through the flusher's code path, answers its time
 *   record  records the N deployments again, newer (the next flush updates every row)
 *   listen  answers the URL; then the parent loads it with phase-2 pulls and asks for a flush
 *           in the middle of that load (flush answers when it started and ended)
 *   exit
 */
import { channelName, releaseVersion, seed, startBenchApp, type BenchApp } from './lib.js'
import type { LicenseKeyPair } from '../src/license-tools.js'

export interface FleetStart {
  type: 'start'
  databaseUrl: string | null
  deployments: number
  channels: number
  releasesPerChannel: number
  keyPair: LicenseKeyPair
  authSecret: string
}
export type FleetCommand = FleetStart | { type: 'flush' } | { type: 'record' } | { type: 'listen' } | { type: 'exit' }

export interface FleetMemory { rssMb: number, heapUsedMb: number, externalMb: number, arrayBuffersMb: number, maxRssMb: number }
export type FleetReply =
  | { type: 'started', recordNsPerCall: number, pending: number, memory: FleetMemory, emptyMemory: FleetMemory }
  | { type: 'recorded', recordNsPerCall: number, pending: number, memory: FleetMemory }
  | { type: 'flushed', rows: number, seconds: number, cpuSeconds: number, startedAtMs: number, endedAtMs: number, memory: FleetMemory }
  | { type: 'listening', url: string }
  | { type: 'failed', error: string }

const mb = (bytes: number): number => Math.round(bytes / 1_048_576 * 10) / 10

async function settledMemory (): Promise<FleetMemory> {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 3; i++) {
    gc?.()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const usage = process.memoryUsage()
  return { rssMb: mb(usage.rss), heapUsedMb: mb(usage.heapUsed), externalMb: mb(usage.external), arrayBuffersMb: mb(usage.arrayBuffers), maxRssMb: mb(process.resourceUsage().maxRSS * 1024) }
}

let bench: BenchApp | null = null
let start: FleetStart | null = null
let generation = 0

/** A new string with this text, as parsing a request makes one (not a shared literal). */
const fresh = (text: string): string => Buffer.from(text, 'latin1').toString('latin1')

/**
 * N distinct deployments, each pulling as an agent would (User-Agent, an address, an applied
 * version). The texts a request brings (channel from the path, Chartcast-Applied, User-Agent,
 * address) are new strings per call, as they are per request; the id and the served version
 * are shared, as the license cache and the compiled spec share them. The time per call
 * includes making those strings.
 */
function recordAll (app: BenchApp, job: FleetStart): number {
  generation++
  const recorder = app.app.checkins
  const served = Array.from({ length: job.channels }, (_, c) => releaseVersion(c, job.releasesPerChannel - 1))
  const started = process.hrtime.bigint()
  for (let i = 0; i < job.deployments; i++) {
    const c = i % job.channels
    recorder.record(
      { id: `fleet-deployment-${i}`, channel: fresh(channelName(c)), applied: generation === 1 ? null : fresh(served[c]!) },
      served[c]!,
      { headers: { 'user-agent': fresh('chartcast-agent/0.1.0 (linux; amd64)') }, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }
    )
  }
  return Number(process.hrtime.bigint() - started) / job.deployments
}

async function handle (command: FleetCommand): Promise<FleetReply | null> {
  switch (command.type) {
    case 'start': {
      start = command
      bench = await startBenchApp({
        databaseUrl: command.databaseUrl,
        keyPair: command.keyPair,
        authSecret: command.authSecret,
        // The parent decides when to flush; the timer must not flush on its own in between.
        env: { CHECKIN_FLUSH_INTERVAL: '1h', CHECKIN_MAX_PENDING: String(command.deployments) }
      })
      await seed(bench, command.channels, command.releasesPerChannel)
      const emptyMemory = await settledMemory()
      const recordNsPerCall = recordAll(bench, command)
      return { type: 'started', recordNsPerCall, pending: bench.app.checkins.pendingCount, memory: await settledMemory(), emptyMemory }
    }
    case 'record':
      return { type: 'recorded', recordNsPerCall: recordAll(bench!, start!), pending: bench!.app.checkins.pendingCount, memory: await settledMemory() }
    case 'flush': {
      const rows = bench!.app.checkins.pendingCount
      const cpu = process.cpuUsage()
      const startedAtMs = Date.now()
      const started = process.hrtime.bigint()
      await bench!.app.checkins.flush()
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      const endedAtMs = Date.now()
      const used = process.cpuUsage(cpu)
      return { type: 'flushed', rows, seconds, cpuSeconds: (used.user + used.system) / 1e6, startedAtMs, endedAtMs, memory: await settledMemory() }
    }
    case 'listen':
      return { type: 'listening', url: await bench!.listen() }
    case 'exit':
      await bench?.close()
      process.exit(0)
  }
}

let queue = Promise.resolve()
process.on('message', (command: FleetCommand) => {
  queue = queue.then(async () => {
    try {
      const reply = await handle(command)
      if (reply !== null) process.send!(reply)
    } catch (error) {
      process.send!({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies FleetReply)
    }
  })
})

/**
 * The load generator, run as one long-lived child process (forked by run.ts) so autocannon
 * gets its own core and the server keeps the other one: on a 2-core machine, autocannon in
 * the server's process would halve what the server can do and measure the client as much
 * as the server.
 *
 * Protocol (IPC): the parent sends request sets once ({type:'items'}), then jobs; for each job
 * the child answers 'started' right before the first request and 'result' at the end.
 * Requests go round-robin over a set (one counter across all connections), so consecutive
 * requests carry different licenses and hit different channels.
 * Latencies go into our own 10 µs histogram fed by autocannon's per-response event:
 * autocannon's own histogram records whole milliseconds and only for 2xx (a 304 would not
 * be counted). The histogram is returned sparse so the parent can merge slices.
 */
import autocannon from 'autocannon'

export interface LoadItem { path: string, headers: Record<string, string> }

export interface LoadJob {
  id: number
  url: string
  connections: number
  /** Seconds; ignored when amount is set. */
  duration: number
  /** Stop after this many requests (the cold pass). */
  amount?: number
  /**
   * Requests per second offered over all connections (autocannon `overallRate`): each
   * connection sends its share of a second's quota, then waits for the next second.
   */
  overallRate?: number
  /** Count responses per this many ms since the first request (LoadResult.timeline). */
  timelineMs?: number
  /** Which request set to go round-robin over. */
  items: string
}

export interface LoadResult {
  seconds: number
  statusCodes: Record<string, number>
  errors: number
  timeouts: number
  /** [bucket, count] pairs; bucket i covers [i, i+1) x BUCKET_MS. */
  histogram: Array<[number, number]>
  maxMs: number
  /** CPU the load generator used, in % of one core: near 100 means the client was the limit. */
  clientCpuPercent: number
  /** With timelineMs: responses per bucket, and when the first request went out (epoch ms). */
  timeline?: { bucketMs: number, startedAtMs: number, counts: number[] }
}

/** `stop` ends the running job now (a job of open-ended duration: the parent decides when). */
export type ParentMessage = { type: 'items', key: string, items: LoadItem[] } | { type: 'job', job: LoadJob } | { type: 'stop' } | { type: 'exit' }
export type LoadMessage = { type: 'started', id: number } | { type: 'result', id: number, result: LoadResult } | { type: 'failed', id: number, error: string }

export const BUCKET_MS = 0.01
const BUCKETS = 200_000 // 2 s; slower responses land in the last bucket

const sets = new Map<string, { items: LoadItem[], next: number }>()
let running: { stop: () => void } | null = null

async function run (job: LoadJob): Promise<LoadResult> {
  const set = sets.get(job.items)
  if (set === undefined) throw new Error(`unknown request set ${job.items}`)
  const histogram = new Uint32Array(BUCKETS)
  let maxMs = 0
  const items = set.items
  let done!: (result: autocannon.Result) => void
  let failed!: (error: unknown) => void
  const finished = new Promise<autocannon.Result>((resolve, reject) => { done = resolve; failed = reject })
  const cpu = process.cpuUsage()
  const timeline: number[] = []
  process.send!({ type: 'started', id: job.id } satisfies LoadMessage)
  const started = process.hrtime.bigint()
  const startedAtMs = Date.now()
  const instance = autocannon({
    url: job.url,
    connections: job.connections,
    duration: job.duration,
    ...(job.amount !== undefined && { amount: job.amount }),
    ...(job.overallRate !== undefined && { overallRate: job.overallRate }),
    requests: [{
      method: 'GET',
      setupRequest: (request) => {
        const item = items[set.next++ % items.length]!
        return { ...request, path: item.path, headers: item.headers }
      }
    }]
  }, (error, result) => { if (error !== null && error !== undefined) failed(error); else done(result) })
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    histogram[Math.min(BUCKETS - 1, Math.floor(ms / BUCKET_MS))]!++
    if (ms > maxMs) maxMs = ms
    if (job.timelineMs !== undefined) {
      const bucket = Math.floor((Date.now() - startedAtMs) / job.timelineMs)
      while (timeline.length <= bucket) timeline.push(0)
      timeline[bucket]!++
    }
  })
  running = { stop: () => { instance.stop() } }
  const result = await finished.finally(() => { running = null })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const used = process.cpuUsage(cpu)
  const statusCodes: Record<string, number> = {}
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0
  const sparse: Array<[number, number]> = []
  histogram.forEach((count, i) => { if (count > 0) sparse.push([i, count]) })
  return {
    seconds,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    histogram: sparse,
    maxMs,
    clientCpuPercent: Math.round((used.user + used.system) / 1e6 / seconds * 100),
    ...(job.timelineMs !== undefined && { timeline: { bucketMs: job.timelineMs, startedAtMs, counts: timeline } })
  }
}

if (process.send !== undefined) {
  let queue = Promise.resolve()
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'items') {
      sets.set(message.key, { items: message.items, next: 0 })
    } else if (message.type === 'stop') {
      running?.stop()
    } else if (message.type === 'exit') {
      queue = queue.then(() => process.exit(0))
    } else {
      const { job } = message
      queue = queue.then(async () => {
        try {
          process.send!({ type: 'result', id: job.id, result: await run(job) } satisfies LoadMessage)
        } catch (error) {
          process.send!({ type: 'failed', id: job.id, error: String(error) } satisfies LoadMessage)
        }
      })
    }
  })
}

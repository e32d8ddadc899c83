import t from 'tap'
import { CheckinFlusher, CheckinRecorder, MAX_AGENT_LENGTH, type CheckinRecord, type FleetWriter, type ReportRecord } from '../../src/services/checkin-recorder.js'

/** A writer that keeps every batch, and fails while `down` is set. */
class FakeWriter implements FleetWriter {
  batches: Array<{ checkins: CheckinRecord[], reports: ReportRecord[] }> = []
  down = false
  async writeFleet (checkins: readonly CheckinRecord[], reports: readonly ReportRecord[]): Promise<void> {
    if (this.down) throw new Error('database unavailable')
    // Copies: the recorder must not change a record after handing it over.
    this.batches.push({ checkins: checkins.map((c) => ({ ...c })), reports: [...reports] })
  }

  get written (): CheckinRecord[] {
    return this.batches.flatMap((b) => b.checkins)
  }
}

const pull = (id: string | null, channel = 'stable', applied: string | null = null) => ({ id, channel, applied })
const request = (ip = '10.0.0.1', agent?: string) => ({ ip, headers: agent === undefined ? {} : { 'user-agent': agent } })

t.test('coalesces: one record per deployment, the latest pull wins', async (t) => {
  let now = 1000
  const writer = new FakeWriter()
  const recorder = new CheckinRecorder(writer, { maxPending: 100, now: () => now })
  recorder.record(pull('a', 'stable', null), '1.0.0', request('10.0.0.1', 'agent/1'))
  now = 2000
  recorder.record(pull('b'), '1.0.0', request())
  now = 3000
  recorder.record(pull('a', 'beta', '1.0.0'), '2.0.0-rc.1', request('10.0.0.9', 'agent/2'))
  t.equal(recorder.pendingCount, 2)
  await recorder.flush()
  t.equal(writer.batches.length, 1, 'one batch')
  const a = writer.written.find((c) => c.id === 'a')
  t.same(a, { id: 'a', channel: 'beta', applied: '1.0.0', served: '2.0.0-rc.1', at: 3000, agent: 'agent/2', address: '10.0.0.9' })
  t.equal(recorder.pendingCount, 0, 'nothing pending after a flush')
  await recorder.flush()
  t.equal(writer.batches.length, 1, 'a flush with nothing pending writes nothing')
})

t.test('anonymous pulls are not check-ins; a long User-Agent is cut', async (t) => {
  const writer = new FakeWriter()
  const recorder = new CheckinRecorder(writer, { maxPending: 100 })
  recorder.record(pull(null), '1.0.0', request())
  t.equal(recorder.pendingCount, 0)
  recorder.record(pull('a'), '1.0.0', request('10.0.0.1', 'x'.repeat(5000)))
  await recorder.flush()
  t.equal(writer.written[0]?.agent?.length, MAX_AGENT_LENGTH)
})

t.test('a pull during a flush goes to the next flush, and does not change the batch in flight', async (t) => {
  let now = 1
  const writer = new FakeWriter()
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const slow: FleetWriter = { writeFleet: async (c, r) => { await gate; await writer.writeFleet(c, r) } }
  const recorder = new CheckinRecorder(slow, { maxPending: 100, now: () => now })
  recorder.record(pull('a'), '1.0.0', request())
  const flushing = recorder.flush()
  now = 2
  recorder.record(pull('a'), '1.1.0', request())
  release()
  await flushing
  t.same(writer.written.map((c) => [c.served, c.at]), [['1.0.0', 1]])
  await recorder.flush()
  t.same(writer.written.map((c) => [c.served, c.at]), [['1.0.0', 1], ['1.1.0', 2]])
})

t.test('a failed flush keeps its records unless a newer one replaced them', async (t) => {
  let now = 1
  const writer = new FakeWriter()
  const recorder = new CheckinRecorder(writer, { maxPending: 100, now: () => now })
  recorder.record(pull('a'), '1.0.0', request())
  recorder.record(pull('b'), '1.0.0', request())
  recorder.report({ deploymentId: 'a', channel: 'stable', version: '1.0.0', outcome: 'applied', detail: null, digest: 'sha256:x' })
  writer.down = true
  await t.rejects(recorder.flush(), { message: 'database unavailable' })
  now = 2
  recorder.record(pull('b'), '1.1.0', request())
  recorder.record(pull('c'), '1.0.0', request())
  t.equal(recorder.pendingCount, 3)
  t.equal(recorder.pendingReportCount, 1)
  writer.down = false
  await recorder.flush()
  t.same(writer.written.map((c) => [c.id, c.served, c.at]).sort(), [['a', '1.0.0', 1], ['b', '1.1.0', 2], ['c', '1.0.0', 2]])
  t.equal(writer.batches[0]?.reports.length, 1, 'the report too')
  t.equal(recorder.dropped, 0)
})

t.test('past CHECKIN_MAX_PENDING the oldest unflushed are dropped and counted', async (t) => {
  const writer = new FakeWriter()
  const drops: string[] = []
  const recorder = new CheckinRecorder(writer, { maxPending: 3, onDrop: (kind) => drops.push(kind) })
  writer.down = true
  for (const id of ['a', 'b', 'c']) recorder.record(pull(id), '1.0.0', request())
  await t.rejects(recorder.flush(), { message: 'database unavailable' })
  // An update: no growth, and it keeps its place (b has waited since before the failure).
  recorder.record(pull('b'), '1.1.0', request())
  recorder.record(pull('d'), '1.0.0', request())
  recorder.record(pull('e'), '1.0.0', request())
  t.equal(recorder.pendingCount, 3)
  t.equal(recorder.dropped, 2)
  t.same(drops, ['checkin', 'checkin'])
  writer.down = false
  await recorder.flush()
  t.same(writer.written.map((c) => c.id).sort(), ['c', 'd', 'e'], 'a and b, waiting longest, were dropped')
})

t.test('reports are bounded too', async (t) => {
  const writer = new FakeWriter()
  const recorder = new CheckinRecorder(writer, { maxPending: 2 })
  for (const version of ['1.0.0', '1.1.0', '1.2.0']) recorder.report({ deploymentId: 'a', channel: 'stable', version, outcome: 'applied', detail: null, digest: null })
  t.equal(recorder.dropped, 1)
  await recorder.flush()
  t.same(writer.batches[0]?.reports.map((r) => r.version), ['1.1.0', '1.2.0'])

  writer.down = true
  const send = (version: string) => { recorder.report({ deploymentId: 'a', channel: 'stable', version, outcome: 'applied', detail: null, digest: null }) }
  send('2.0.0')
  await t.rejects(recorder.flush(), { message: 'database unavailable' })
  for (const version of ['2.1.0', '2.2.0', '2.3.0', '2.4.0']) send(version)
  t.equal(recorder.pendingReportCount, 2)
  t.equal(recorder.dropped, 4)
  writer.down = false
  await recorder.flush()
  t.same(writer.batches[1]?.reports.map((r) => r.version), ['2.3.0', '2.4.0'], 'the newest kept, in order')
})

t.test('a large flush is written in batches of batchSize', async (t) => {
  const writer = new FakeWriter()
  const batches: number[] = []
  const recorder = new CheckinRecorder(writer, { maxPending: 100, batchSize: 4, onBatch: (rows) => batches.push(rows) })
  for (let i = 0; i < 10; i++) recorder.record(pull(`d${i}`), '1.0.0', request())
  await recorder.flush()
  t.same(writer.batches.map((b) => b.checkins.length), [4, 4, 2])
  t.same(batches, [4, 4, 2])
  t.equal(new Set(writer.written.map((c) => c.id)).size, 10)
})

t.test('while pulls arrive, each batch is followed by a pause as long as it took; without pulls, and after the last batch, none', async (t) => {
  const pauses: number[] = []
  let recorder: CheckinRecorder | null = null
  let pullDuringBatch = true
  const writer: FleetWriter = {
    async writeFleet () {
      // A pull recorded while this batch is being written (as the spec path would).
      if (pullDuringBatch) recorder!.record(pull('new-during-flush'), '1.0.0', request())
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  recorder = new CheckinRecorder(writer, { maxPending: 100, batchSize: 2, yieldToPulls: 1, sleep: async (ms) => { pauses.push(ms) } })
  for (let i = 0; i < 6; i++) recorder.record(pull(`d${i}`), '1.0.0', request())
  await recorder.flush()
  t.equal(pauses.length, 2, 'a pause after each of the first two of three batches, none after the last')
  for (const ms of pauses) t.ok(ms > 0, 'a pause of the batch\'s own duration')

  pauses.length = 0
  pullDuringBatch = false
  for (let i = 0; i < 6; i++) recorder.record(pull(`e${i}`), '1.0.0', request())
  await recorder.flush()
  t.same(pauses, [], 'nobody pulled during the batches: no pause')
})

t.test('with batches in flight at once, a failed batch and those not started stay pending; written ones do not', async (t) => {
  let inFlight = 0
  let mostInFlight = 0
  const written: string[][] = []
  let calls = 0
  const writer: FleetWriter = {
    async writeFleet (checkins) {
      const call = ++calls
      inFlight++
      mostInFlight = Math.max(mostInFlight, inFlight)
      // Let the other lane start before this batch ends.
      await new Promise((resolve) => setImmediate(resolve))
      inFlight--
      if (call === 2) throw new Error('database unavailable')
      written.push(checkins.map((c) => c.id))
    }
  }
  const recorder = new CheckinRecorder(writer, { maxPending: 100, batchSize: 2, concurrency: 2 })
  for (let i = 0; i < 9; i++) recorder.record(pull(`d${i}`), '1.0.0', request())
  await t.rejects(recorder.flush(), { message: 'database unavailable' })
  t.equal(mostInFlight, 2, 'two batches were written at once')
  // Lane one wrote d0-d1 and had started d4-d5 before lane two's d2-d3 failed: both
  // committed; nothing started after the failure.
  t.same(written, [['d0', 'd1'], ['d4', 'd5']])
  t.equal(recorder.pendingCount, 5)
  recorder.record(pull('d9'), '1.0.0', request())
  written.length = 0
  await recorder.flush()
  t.same(written.flat(), ['d2', 'd3', 'd6', 'd7', 'd8', 'd9'], 'the unwritten ones, oldest first, then the newer pull')
})

t.test('the flusher writes on stop, and keeps going after a failure', async (t) => {
  const writer = new FakeWriter()
  const recorder = new CheckinRecorder(writer, { maxPending: 100 })
  const errors: unknown[] = []
  // An interval no test waits for: the flush under test is stop()'s.
  const flusher = new CheckinFlusher(recorder, 3_600_000, (error) => errors.push(error))
  flusher.start()
  recorder.record(pull('a'), '1.0.0', request())
  await flusher.stop()
  t.same(writer.written.map((c) => c.id), ['a'])
  writer.down = true
  recorder.record(pull('b'), '1.0.0', request())
  await t.rejects(flusher.stop(), { message: 'database unavailable' })
  t.equal(recorder.pendingCount, 1, 'kept for later')
})

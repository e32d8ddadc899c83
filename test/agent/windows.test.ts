import t from 'tap'
import { isInWindow, nextWindowOpen, parseWindow } from '../../src/agent/windows.js'

// Maintenance windows, with the clock passed in: no test waits. Europe/Berlin in 2026 springs
// forward on Sunday 29 March (02:00 CET → 03:00 CEST) and falls back on Sunday 25 October
// (03:00 CEST → 02:00 CET).

const at = (iso: string) => Date.parse(iso)
const MIN = 60_000
const STEP = 5 * MIN

/** Walks [from, to) in 5-minute steps (every boundary here is on one): how often the window opens, and for how many minutes it is open. */
function scan (spec: string, from: string, to: string): { openings: number[], minutesOpen: number } {
  const windows = [parseWindow(spec)]
  const openings: number[] = []
  let minutesOpen = 0
  let inside = isInWindow(windows, at(from) - STEP)
  for (let ms = at(from); ms < at(to); ms += STEP) {
    const now = isInWindow(windows, ms)
    if (now) minutesOpen += STEP / MIN
    if (now && !inside) openings.push(ms)
    inside = now
  }
  return { openings, minutesOpen }
}

t.test('parses days, ranges, crossing midnight and zones', async (t) => {
  const w = parseWindow('Sat,Sun 02:00-06:00 Europe/Berlin')
  t.same([...w.days], [6, 7])
  t.match(w, { start: 120, end: 360, zone: 'Europe/Berlin' })
  t.same([...parseWindow('Mon-Fri 22:00-01:00').days], [1, 2, 3, 4, 5])
  t.equal(parseWindow('Mon-Fri 22:00-01:00').zone, 'UTC', 'UTC by default')
  t.same([...parseWindow('Fri-Mon 00:00-24:00 UTC').days], [5, 6, 7, 1], 'a range may wrap the week')
  t.same([...parseWindow('saturday 01:00-02:00 UTC').days], [6])
})

t.test('a window crossing midnight belongs to the day it starts on', async (t) => {
  const windows = [parseWindow('Fri 22:00-02:00 UTC')]
  t.notOk(isInWindow(windows, at('2026-06-05T21:59:00Z')), 'Fri 21:59: not yet')
  t.ok(isInWindow(windows, at('2026-06-05T22:00:00Z')), 'Fri 22:00: open')
  t.ok(isInWindow(windows, at('2026-06-06T01:59:00Z')), 'Sat 01:59: still open')
  t.notOk(isInWindow(windows, at('2026-06-06T02:00:00Z')), 'Sat 02:00: closed')
  t.notOk(isInWindow(windows, at('2026-06-06T23:00:00Z')), 'Sat 23:00: no window starts on Saturday')
  t.notOk(isInWindow(windows, at('2026-06-05T01:00:00Z')), 'Fri 01:00: Thursday has no window')
  t.equal(nextWindowOpen(windows, at('2026-06-06T03:00:00Z')), at('2026-06-12T22:00:00Z'), 'next: the following Friday')
})

t.test('spring forward (Europe/Berlin, 29 March 2026): windows are neither skipped nor doubled', async (t) => {
  const sunday = scan('Sun 02:00-06:00 Europe/Berlin', '2026-03-28T12:00:00Z', '2026-03-30T00:00:00Z')
  t.same(sunday.openings, [at('2026-03-29T01:00:00Z')], 'opens once, at 03:00 CEST (02:00 does not exist)')
  t.equal(sunday.minutesOpen, 180, '03:00-06:00 CEST: three hours of real time')

  const inGap = scan('Sun 02:00-02:30 Europe/Berlin', '2026-03-28T12:00:00Z', '2026-03-30T00:00:00Z')
  t.equal(inGap.openings.length, 1, 'a window wholly inside the skipped hour still opens')
  t.equal(inGap.minutesOpen, 30, 'for its nominal length')

  const acrossMidnight = scan('Sat 23:00-03:30 Europe/Berlin', '2026-03-28T12:00:00Z', '2026-03-30T00:00:00Z')
  t.same(acrossMidnight.openings, [at('2026-03-28T22:00:00Z')], 'Sat 23:00 CET')
  t.equal(acrossMidnight.minutesOpen, 210, 'until 03:30 CEST: 3.5 h of real time')

  t.equal(nextWindowOpen([parseWindow('Sun 02:00-06:00 Europe/Berlin')], at('2026-03-28T12:00:00Z')), at('2026-03-29T01:00:00Z'))
  const week = scan('daily 02:00-03:00 Europe/Berlin', '2026-03-26T00:00:00Z', '2026-04-02T00:00:00Z')
  t.equal(week.openings.length, 7, 'a daily window opens on each of 7 days, the DST day included')
})

t.test('fall back (Europe/Berlin, 25 October 2026): windows are neither skipped nor doubled', async (t) => {
  const sunday = scan('Sun 02:00-06:00 Europe/Berlin', '2026-10-24T12:00:00Z', '2026-10-26T00:00:00Z')
  t.equal(sunday.openings.length, 1, 'the repeated 02:00 opens it once')
  t.same(sunday.openings, [at('2026-10-25T01:00:00Z')], 'at the second 02:00 (CET)')
  t.equal(sunday.minutesOpen, 240, '02:00-06:00 CET')

  const inRepeat = scan('Sun 02:15-02:45 Europe/Berlin', '2026-10-24T12:00:00Z', '2026-10-26T00:00:00Z')
  t.equal(inRepeat.openings.length, 1, 'a window inside the repeated hour opens once, not twice')
  t.equal(inRepeat.minutesOpen, 30)

  const acrossMidnight = scan('Sat 23:00-04:00 Europe/Berlin', '2026-10-24T12:00:00Z', '2026-10-26T00:00:00Z')
  t.same(acrossMidnight.openings, [at('2026-10-24T21:00:00Z')], 'Sat 23:00 CEST')
  t.equal(acrossMidnight.minutesOpen, 360, 'until 04:00 CET: six hours of real time')

  const week = scan('daily 02:30-03:30 Europe/Berlin', '2026-10-22T00:00:00Z', '2026-10-29T00:00:00Z')
  t.equal(week.openings.length, 7, 'a daily window opens on each of 7 days, the DST day included')
})

t.test('several windows: inside any one is inside; the next opening is the earliest', async (t) => {
  const windows = [parseWindow('Sat 02:00-06:00 Europe/Berlin'), parseWindow('Wed 12:00-13:00 America/New_York')]
  t.ok(isInWindow(windows, at('2026-06-10T16:30:00Z')), 'Wed 12:30 EDT')
  t.equal(nextWindowOpen(windows, at('2026-06-08T00:00:00Z')), at('2026-06-10T16:00:00Z'))
  t.equal(nextWindowOpen(windows, at('2026-06-10T17:00:00Z')), at('2026-06-13T00:00:00Z'), 'Sat 02:00 CEST')
})

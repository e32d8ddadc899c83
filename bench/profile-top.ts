/**
 * Top self-time functions of a .cpuprofile (from `BENCH_PROFILE=1 npm run bench` or
 * `node --cpu-prof`), grouped by function and file, plus a per-package roll-up.
 *
 *   npx tsx bench/profile-top.ts bench/results/phase-pglite-spec-*.cpuprofile [rows]
 */
import { readFileSync } from 'node:fs'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const files = process.argv.slice(2).filter((a) => a.endsWith('.cpuprofile'))
if (files.length === 0) {
  console.error('usage: tsx bench/profile-top.ts <file.cpuprofile>... [rows]')
  process.exit(2)
}
const rows = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? '30')
/** Self time per node, keyed by call frame so several profiles (one per slice) merge. */
const selfByFrame = new Map<string, { frame: ProfileNode['callFrame'], us: number }>()
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  profile.samples.forEach((id, i) => {
    // The first sample's delta runs from the profiler's start-up (the inspector's `dispatch`), not from work.
    if (i === 0) return
    const frame = byId.get(id)!.callFrame
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`
    const entry = selfByFrame.get(key) ?? { frame, us: 0 }
    entry.us += profile.timeDeltas[i] ?? 0
    selfByFrame.set(key, entry)
  })
}
const total = [...selfByFrame.values()].reduce((a, b) => a + b.us, 0)

function where (url: string): string {
  if (url === '') return ''
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length)
  const src = url.indexOf('/src/')
  if (src >= 0) return url.slice(src + 1)
  return url.replace(/^file:\/\//, '')
}

function group (url: string): string {
  const w = where(url)
  if (w === '') return '(native / V8)'
  if (w.startsWith('node:')) return 'node core'
  if (w.startsWith('src/')) return 'chartcast src'
  const parts = w.split('/')
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
}

const functions = new Map<string, number>()
const packages = new Map<string, number>()
for (const { frame, us } of selfByFrame.values()) {
  const { functionName, url, lineNumber } = frame
  const key = `${functionName || '(anonymous)'}  ${where(url)}${url === '' ? '' : ':' + (lineNumber + 1)}`
  functions.set(key, (functions.get(key) ?? 0) + us)
  packages.set(group(url), (packages.get(group(url)) ?? 0) + us)
}

const pct = (us: number): string => (us / total * 100).toFixed(1).padStart(5) + '%'
console.log(`${files.length} profile(s): ${(total / 1e6).toFixed(1)} s sampled`)
console.log('\nby package')
for (const [name, us] of [...packages].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(us)}  ${name}`)
console.log('\ntop self time')
for (const [name, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`${pct(us)}  ${name}`)

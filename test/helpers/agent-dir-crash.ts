/**
 * Child process for the dir applier crash test: applies a set and SIGKILLs itself right
 * after writing the file named in argv[3], i.e. a real crash between writes (no catch, no
 * finally, no cleanup). Usage: node --import tsx agent-dir-crash.ts OUT_DIR FILE
 */
import { DirApplier, type SetFile } from '../../src/agent/appliers/dir.js'
import { computeDesired } from '../../src/agent/desired.js'

const [outDir, crashAfter] = process.argv.slice(2) as [string, SetFile]
const desired = computeDesired(
  { channel: 'stable', version: '2.0.0', chart: { url: 'https://charts.example.com', name: 'acme-app', version: '0.20.0' }, values: { generation: 'new' } },
  { userValues: {}, crValues: {} }
)
const applier = new DirApplier(outDir, {
  afterWrite: (file) => {
    if (file === crashAfter) process.kill(process.pid, 'SIGKILL')
  }
})
await applier.apply(desired, { release: 'acme', namespace: 'acme-ns' })

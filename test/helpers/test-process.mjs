/**
 * Preloaded into every test process by tap (package.json "tap.node-arg", after tap's own
 * preloads and before tsx). (JavaScript, not TypeScript: it runs before tsx is registered.)
 */
import { createRequire } from 'node:module'
import process from 'node:process'
import './bundled-packages.mjs'

// tap loads its process-info recorder into each test process, and it puts itself into every
// process the test starts, even one given an environment of its own: through NODE_OPTIONS and
// a hook on child_process spawning (process-on-spawn). In a child it registers a module hook
// that copies every module's text, which doubled the CPU a `chartcast` command or a helm
// stand-in takes to start. It records only for coverage and `tap --changed`, and this suite
// uses neither (coverage is off), so the children a test starts run without it.
const recorder = /\s*"?--(?:import|loader)=\S*@tapjs\/processinfo\S*"?/g
if (process.env.NODE_OPTIONS !== undefined) {
  const rest = process.env.NODE_OPTIONS.replace(recorder, '').trim()
  if (rest === '') delete process.env.NODE_OPTIONS
  else process.env.NODE_OPTIONS = rest
}
createRequire(import.meta.url)('process-on-spawn').removeAllListeners()

/**
 * tap reporter for `npm test` (package.json "tap.reporter"): one line per test file as it
 * finishes, with its time; the full TAP of a file only when it fails; then the totals. Plain
 * text without terminal control codes, so it reads the same in a CI log as in a terminal.
 * (JavaScript, not TypeScript: tap loads it in its runner process, which has no tsx.)
 */
import { Transform } from 'node:stream'

const FILE_RESULT = /^(not )?ok \d+ - (.*?)(?: # (?:time=([\d.]+)ms|(.*)))?$/

export default class FileReporter extends Transform {
  constructor () {
    super()
    this.pending = ''
    /** The indented TAP of the file running now, printed only if it fails. */
    this.detail = []
    /** After a failed file: its YAML diagnostics (exit code, signal, timeout) follow, printed too. */
    this.afterFailure = false
  }

  _transform (chunk, _encoding, callback) {
    const lines = (this.pending + chunk.toString()).split('\n')
    this.pending = lines.pop() ?? ''
    for (const line of lines) this.line(line)
    callback()
  }

  _flush (callback) {
    if (this.pending !== '') this.line(this.pending)
    callback()
  }

  line (line) {
    if (this.afterFailure && line.startsWith(' ')) {
      this.push(`${line}\n`)
      return
    }
    this.afterFailure = false
    if (line.startsWith(' ') || line === '' || line.startsWith('# Subtest:')) {
      this.detail.push(line)
      return
    }
    const result = FILE_RESULT.exec(line)
    if (result !== null) {
      const [, not, file, ms, directive] = result
      const time = ms === undefined ? (directive ?? '') : `${(Number(ms) / 1000).toFixed(1)} s`
      if (not !== undefined) this.push(`${this.detail.join('\n')}\n`)
      this.push(`${not === undefined ? 'ok    ' : 'FAILED'} ${file.padEnd(48)} ${time}\n`)
      this.afterFailure = not !== undefined
      this.detail = []
      return
    }
    // TAP version, plan and the root's summary comments.
    if (line.startsWith('#')) this.push(`${line}\n`)
  }
}

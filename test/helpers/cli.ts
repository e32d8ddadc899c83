/**
 * Runs the real `chartcast` command, as built into dist/ (`npm test` builds first through
 * its pretest script), and collects its output.
 */
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const CLI_ENTRY = path.join(ROOT, 'dist/cli/index.js')

export interface CliResult { code: number | null, stdout: string, stderr: string }

/**
 * V8 flags for the short-lived `chartcast` processes tests start. Most of their CPU is
 * PGlite's WebAssembly: V8 compiles it with its baseline compiler (Liftoff) and then again,
 * on background threads, with its optimising one for hot functions, which a process that
 * lives for seconds never repays (`chartcast migrate` on a new DATA_DIR: 7.1 s of CPU, 4.4 s
 * with Liftoff only; measured, bench/README.md "suite time"). The same WebAssembly runs, so
 * the behaviour under test is the same; only the compiler tier differs from production.
 */
export const TEST_CHILD_NODE_FLAGS = ['--liftoff-only']

/**
 * `timeoutMs` only ends a command that hangs: a `serve` or `sync` that creates a PGlite database
 * on a new DATA_DIR took over 60 s on a loaded 2-core machine, and was then killed mid-start.
 */
export async function runCli (args: string[], env: Record<string, string> = {}, timeoutMs = 180_000, cwd = ROOT): Promise<CliResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TEST_CHILD_NODE_FLAGS, CLI_ENTRY, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** An empty channels directory for a server under test (a CHANNELS_DIR that is set must exist). */
export function emptyChannelsDir (dir: string): string {
  mkdirSync(dir, { recursive: true })
  return dir
}
